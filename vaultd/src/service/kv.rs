//! Key-value secrets: Put, Get, Delete, List.

use proto::v1 as pb;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use super::checks::{Asks, check_value_size};
use super::{Api, vault_err};
use crate::gates::CallRecord;

pub(super) async fn put(
    api: &Api,
    mut request: Request<pb::PutRequest>,
) -> Result<Response<pb::PutResponse>, Status> {
    let max_secret_bytes = api.gates.rules().max_secret_bytes;
    let size = check_value_size(request.get_ref(), max_secret_bytes);
    // Taken, not copied, and wiped once stored.
    let value = Zeroizing::new(std::mem::take(&mut request.get_mut().value));
    let m = request.get_ref();
    let ask = m.ask();
    if let Err(status) = size {
        // Refused before anything could change: one record.
        let caller = api.gates.admit(&request, ask).await?;
        let call = CallRecord::new(&caller, request.remote_addr(), ask);
        return api.gates.finish(&call, Err(status)).await;
    }
    let (scope, key, expected) = (m.scope.clone(), m.key.clone(), m.expected_version);
    let version = api
        .change(
            &request,
            ask,
            move |v| v.set_if(&scope, &key, &value, expected).map_err(vault_err),
            |version| Some(*version),
        )
        .await?;
    Ok(Response::new(pb::PutResponse { version }))
}

pub(super) async fn get(
    api: &Api,
    request: Request<pb::GetRequest>,
) -> Result<Response<pb::GetResponse>, Status> {
    let m = request.get_ref();
    let ask = m.ask();
    let (scope, key, version) = (m.scope.clone(), m.key.clone(), m.version);
    // Authorized first: a caller the gates refuse never reaches the cache.
    let caller = api.gates.admit(&request, ask).await?;
    let call = CallRecord::new(&caller, request.remote_addr(), ask);
    // A cached value is answered on the async worker: it needs neither store nor KEK,
    // so it keeps working while a slow device holds the pool.
    if let Some((found, value)) = api.gates.vault.get_cached(&scope, &key, version) {
        let reply = pb::GetResponse {
            value: value.expose_secret().to_vec(),
            version: found,
        };
        return api.gates.finish(&call, Ok(reply)).await.map(Response::new);
    }
    let reply = api
        .read_on_pool(call, move |v| {
            let (found, value) = v.get_versioned(&scope, &key, version).map_err(vault_err)?;
            Ok(pb::GetResponse {
                value: value.expose_secret().to_vec(),
                version: found,
            })
        })
        .await?;
    Ok(Response::new(reply))
}

pub(super) async fn delete(
    api: &Api,
    request: Request<pb::DeleteRequest>,
) -> Result<Response<pb::DeleteResponse>, Status> {
    let m = request.get_ref();
    let ask = m.ask();
    let (scope, key) = (m.scope.clone(), m.key.clone());
    api.change(
        &request,
        ask,
        move |v| v.delete(&scope, &key).map_err(vault_err),
        |()| None,
    )
    .await?;
    Ok(Response::new(pb::DeleteResponse {}))
}

pub(super) async fn list(
    api: &Api,
    request: Request<pb::ListRequest>,
) -> Result<Response<pb::ListResponse>, Status> {
    let m = request.get_ref();
    let ask = m.ask();
    let caller = api.gates.admit(&request, ask).await?;
    let call = CallRecord::new(&caller, request.remote_addr(), ask);
    let wanted = m.scope.clone();
    let all = api
        .read_on_pool(call, move |v| v.list(wanted.as_deref()).map_err(vault_err))
        .await?;
    let rules = api.gates.rules();
    Ok(Response::new(pb::ListResponse {
        secrets: all
            .into_iter()
            .filter(|s| rules.acl.visible(&caller.id, &s.scope, &s.key))
            .map(|s| pb::SecretInfo {
                scope: s.scope,
                key: s.key,
                version: s.version,
                versions: s.versions,
                created_at_ms: s.created_at,
                updated_at_ms: s.updated_at,
            })
            .collect(),
    }))
}
