//! Transit: Seal, Open, Rewrap and GenerateDataKey on caller data; nothing is stored.
//!
//! A context is shared by every principal the ACL lets use it, unless the ACL binds it to
//! the caller (`bind_caller`, see `Acl::binds_caller`): then the caller's principal id is
//! part of the envelope's AAD, and only the same caller opens what it sealed.

use proto::v1 as pb;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use super::checks::{Asks, data_key_len};
use super::{Api, vault_err};
use crate::acl::Operation;
use crate::gates::{Ask, CallRecord};

/// The principal this request's transit data is bound to: the caller, when the ACL binds
/// `context` to its caller; else `None`.
///
/// The caller is read from the request's client certificate with `pki::principal_of`, as the
/// gates identify it; the gates then admit that same caller (or refuse the request) before
/// any work runs. The certificate is only parsed here when some rule binds contexts.
fn bound_to<Req>(api: &Api, request: &Request<Req>, context: &str) -> Option<String> {
    let rules = api.gates.rules();
    if !rules.acl.has_bindings() {
        return None;
    }
    let certs = request.peer_certs()?;
    let caller = pki::principal_of(certs.first()?.as_ref()).ok()?;
    rules.acl.binds_caller(&caller, context).then_some(caller)
}

pub(super) async fn seal(
    api: &Api,
    mut request: Request<pb::SealRequest>,
) -> Result<Response<pb::SealResponse>, Status> {
    // Taken, not copied (a payload may be megabytes), and wiped once sealed.
    let plaintext = Zeroizing::new(std::mem::take(&mut request.get_mut().plaintext));
    let m = request.get_ref();
    let ask = m.ask();
    let context = m.context.clone();
    let bound_to = bound_to(api, &request, &context);
    let envelope = api
        .call_in_memory(&request, ask, move |v| {
            v.seal_data(&context, bound_to.as_deref(), &plaintext)
                .map_err(vault_err)
        })
        .await?;
    Ok(Response::new(pb::SealResponse { envelope }))
}

pub(super) async fn open(
    api: &Api,
    mut request: Request<pb::OpenRequest>,
) -> Result<Response<pb::OpenResponse>, Status> {
    let sealed = std::mem::take(&mut request.get_mut().envelope);
    let m = request.get_ref();
    let ask = m.ask();
    let context = m.context.clone();
    let bound_to = bound_to(api, &request, &context);
    let plaintext = api
        .call_in_memory(&request, ask, move |v| {
            v.open_data(&context, bound_to.as_deref(), &sealed)
                .map(|p| p.expose_secret().to_vec())
                .map_err(vault_err)
        })
        .await?;
    Ok(Response::new(pb::OpenResponse { plaintext }))
}

pub(super) async fn rewrap(
    api: &Api,
    mut request: Request<pb::RewrapRequest>,
) -> Result<Response<pb::RewrapResponse>, Status> {
    let sealed = std::mem::take(&mut request.get_mut().envelope);
    let m = request.get_ref();
    // Rewrap opens and seals: the caller needs both rights on the context.
    let open = m.ask();
    api.gates.admit(&request, open).await?;
    let ask = Ask {
        op: Operation::Seal,
        ..open
    };
    let context = m.context.clone();
    let bound_to = bound_to(api, &request, &context);
    let envelope = api
        .call_in_memory(&request, ask, move |v| {
            v.rewrap_data(&context, bound_to.as_deref(), &sealed)
                .map_err(vault_err)
        })
        .await?;
    Ok(Response::new(pb::RewrapResponse { envelope }))
}

pub(super) async fn generate_data_key(
    api: &Api,
    request: Request<pb::GenerateDataKeyRequest>,
) -> Result<Response<pb::GenerateDataKeyResponse>, Status> {
    let m = request.get_ref();
    let ask = m.ask();
    let length = match data_key_len(m) {
        Ok(length) => length,
        Err(status) => {
            let caller = api.gates.admit(&request, ask).await?;
            let call = CallRecord::new(&caller, request.remote_addr(), ask);
            return api.gates.finish(&call, Err(status)).await;
        }
    };
    let context = m.context.clone();
    let bound_to = bound_to(api, &request, &context);
    let reply = api
        .call_in_memory(&request, ask, move |v| {
            let mut key = envelope::SecretBytes::zeroed(length).map_err(|e| vault_err(e.into()))?;
            envelope::random_bytes(key.expose_secret_mut()).map_err(|e| vault_err(e.into()))?;
            let sealed_key = v
                .seal_data(&context, bound_to.as_deref(), key.expose_secret())
                .map_err(vault_err)?;
            Ok(pb::GenerateDataKeyResponse {
                plaintext_key: key.expose_secret().to_vec(),
                sealed_key,
            })
        })
        .await?;
    Ok(Response::new(reply))
}
