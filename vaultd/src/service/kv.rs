//! Key-value secrets: Put, Get, Delete, List.

use std::sync::Arc;

use proto::v1 as pb;
use tonic::{Request, Response, Status};
use vault::{ListPosition, SecretInfo};
use zeroize::Zeroizing;

use super::checks::{Asks, check_value_size};
use super::{Api, vault_err};
use crate::acl::Acl;
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

/// Secrets per List page when the caller asks for no size, and the most it may ask for.
const DEFAULT_PAGE: usize = 1_000;
const MAX_PAGE: usize = 10_000;
/// Stored secrets one List call reads at most while filling a page with secrets the caller
/// may see: a page that fills slowly ends early, with a token to go on from.
const MAX_SCANNED: usize = 10 * MAX_PAGE;

pub(super) async fn list(
    api: &Api,
    request: Request<pb::ListRequest>,
) -> Result<Response<pb::ListResponse>, Status> {
    let m = request.get_ref();
    let ask = m.ask();
    let caller = api.gates.admit(&request, ask).await?;
    let call = CallRecord::new(&caller, request.remote_addr(), ask);
    let size = match m.page_size {
        0 => DEFAULT_PAGE,
        n => usize::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE),
    };
    let start = match m.page_token.as_str() {
        "" => None,
        token => match ListPosition::from_token(token) {
            Ok(position) => Some(position),
            Err(e) => return api.gates.finish(&call, Err(vault_err(e))).await,
        },
    };
    let wanted = m.scope.clone();
    let rules = Arc::clone(&api.gates.rules());
    let principal = caller.id.to_string();
    let reply = api
        .read_on_pool(call, move |v| {
            visible_reply(v, wanted.as_deref(), start, size, &rules.acl, &principal)
                .map_err(vault_err)
        })
        .await?;
    Ok(Response::new(reply))
}

/// The page of [`visible_page`] for `principal`, and on the first page (no `start`) how
/// many secrets the whole listing holds for it, if that can be told cheaply: from the page
/// itself when it is the whole listing, by one count in the store when the ACL shows
/// `principal` every secret listed, else by [`count_visible`].
fn visible_reply(
    vault: &vault::Vault,
    scope: Option<&str>,
    start: Option<ListPosition>,
    size: usize,
    acl: &Acl,
    principal: &str,
) -> Result<pb::ListResponse, vault::Error> {
    let visible = |s: &SecretInfo| acl.visible(principal, &s.scope, &s.key);
    let first = start.is_none();
    let (secrets, next) = visible_page(vault, scope, start, size, visible)?;
    let total_count = match next {
        _ if !first => None,
        None => Some(secrets.len() as u64),
        Some(_) if acl.lists_everything(principal, scope) => Some(vault.count(scope)?),
        Some(_) => count_visible(vault, scope, visible, MAX_SCANNED)?,
    };
    Ok(pb::ListResponse {
        secrets: secrets
            .into_iter()
            .map(|s| pb::SecretInfo {
                scope: s.scope,
                key: s.key,
                version: s.version,
                versions: s.versions,
                created_at_ms: s.created_at,
                updated_at_ms: s.updated_at,
            })
            .collect(),
        next_page_token: next.map(|p| p.to_token()).unwrap_or_default(),
        total_count,
    })
}

/// How many secrets of the listing of `scope` `visible` lets the caller see, read name by
/// name from the first; `None` when that would read more than `most` names (a count cut
/// short would be wrong, and a longer walk would make every first page slow).
fn count_visible(
    vault: &vault::Vault,
    scope: Option<&str>,
    visible: impl Fn(&SecretInfo) -> bool,
    most: usize,
) -> Result<Option<u64>, vault::Error> {
    let (mut counted, mut scanned, mut after) = (0, 0, None);
    loop {
        let page = vault.list_page(scope, after.as_ref(), most.min(MAX_PAGE))?;
        scanned += page.secrets.len();
        counted += page.secrets.iter().filter(|s| visible(s)).count() as u64;
        match page.next {
            None => return Ok(Some(counted)),
            Some(_) if scanned >= most => return Ok(None),
            next => after = next,
        }
    }
}

/// Up to `size` secrets after `start` that `visible` lets the caller see, reading store pages
/// until the page is full, the listing ends, or [`MAX_SCANNED`] secrets were read; and where
/// the next page starts (after the last secret read), if anything may follow.
fn visible_page(
    vault: &vault::Vault,
    scope: Option<&str>,
    start: Option<ListPosition>,
    size: usize,
    visible: impl Fn(&SecretInfo) -> bool,
) -> Result<(Vec<SecretInfo>, Option<ListPosition>), vault::Error> {
    let (mut shown, mut scanned, mut after) = (Vec::new(), 0, start);
    loop {
        let page = vault.list_page(scope, after.as_ref(), size)?;
        scanned += page.secrets.len();
        let read = page.secrets.len();
        for (n, secret) in page.secrets.into_iter().enumerate() {
            if !visible(&secret) {
                continue;
            }
            shown.push(secret);
            if shown.len() == size {
                let last_of_all = n + 1 == read && page.next.is_none();
                let next = (!last_of_all).then(|| position_of(shown.last()));
                return Ok((shown, next.flatten()));
            }
        }
        match page.next {
            Some(next) if scanned < MAX_SCANNED => after = Some(next),
            next => return Ok((shown, next)),
        }
    }
}

fn position_of(secret: Option<&SecretInfo>) -> Option<ListPosition> {
    secret.map(|s| ListPosition {
        scope: s.scope.clone(),
        key: s.key.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault_of(secrets: usize) -> (tempfile::TempDir, vault::Vault) {
        let dir = tempfile::tempdir().expect("tempdir");
        let kek = vault::Kek {
            uri: "memory:kv-tests".into(),
            provider: Arc::new(envelope::SoftwareKek::random("kv-tests").expect("kek")),
        };
        let vault =
            vault::Vault::init(dir.path(), vault::StoreKind::Memory, vec![kek]).expect("init");
        for i in 0..secrets {
            vault.set("global", &format!("k{i:03}"), b"v").expect("set");
        }
        (dir, vault)
    }

    #[test]
    fn a_count_that_would_read_too_many_names_is_left_unset() {
        let (_dir, vault) = vault_of(30);
        // k000, k003, k006, k009, k010, ...: 12 of the 30.
        let some = |s: &SecretInfo| s.key.ends_with(['0', '3', '6', '9']);
        let count = |most| count_visible(&vault, None, some, most).expect("count");
        assert_eq!(count(31), Some(12), "read to the end");
        assert_eq!(count(1000), Some(12));
        assert_eq!(count(10), None, "cut short: never 4");
        assert_eq!(count(29), None);
        assert_eq!(
            count_visible(&vault, Some("skill:none"), some, 10).expect("count"),
            Some(0)
        );
    }
}
