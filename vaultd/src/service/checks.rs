//! What each request asks for (the [`Ask`] the gates and the audit log see) and the checks
//! its own contents must pass, whoever sends it. Pure, so that the validation of every request
//! type can be fuzzed on its own (fuzz/fuzz_targets/grpc_requests.rs); the handlers take
//! their asks and limits from here, and the gates check the names ([`check_names`]) after the
//! ACL.

use proto::v1 as pb;
use tonic::Status;

use crate::acl::{ADMIN_SCOPE, Operation, STATUS_KEY};
use crate::gates::Ask;

/// Data-key lengths GenerateDataKey accepts (bytes).
pub const DATA_KEY_LEN: std::ops::RangeInclusive<u32> = 16..=64;
/// The most records AuditTail returns.
pub const MAX_AUDIT_TAIL: u32 = 10_000;

/// What a request asks for.
pub trait Asks {
    /// The ask the gates check and the audit log records.
    fn ask(&self) -> Ask<'_>;
}

/// The scope and key of an ask that names a secret must be valid names (INVALID_ARGUMENT).
pub fn check_names(ask: &Ask<'_>) -> Result<(), Status> {
    if !ask.names_a_secret {
        return Ok(());
    }
    vault::Scope::parse(ask.scope)
        .and_then(|_| vault::check_key(ask.key))
        .map_err(|e| Status::invalid_argument(e.to_string()))
}

/// A Put's value must fit this vault's limit (INVALID_ARGUMENT).
pub fn check_value_size(m: &pb::PutRequest, max_secret_bytes: usize) -> Result<(), Status> {
    if m.value.len() > max_secret_bytes {
        return Err(Status::invalid_argument(format!(
            "the value is {} bytes, over this vault's limit of {max_secret_bytes}",
            m.value.len()
        )));
    }
    Ok(())
}

/// The length of the key a GenerateDataKey asks for: 32 when it gives none, else 16 to 64
/// (INVALID_ARGUMENT).
pub fn data_key_len(m: &pb::GenerateDataKeyRequest) -> Result<usize, Status> {
    let length = if m.length == 0 { 32 } else { m.length };
    if !DATA_KEY_LEN.contains(&length) {
        return Err(Status::invalid_argument(format!(
            "a data key is 16 to 64 bytes, not {length}"
        )));
    }
    Ok(length as usize)
}

/// The records an AuditTail returns: 20 when it gives no count, at most [`MAX_AUDIT_TAIL`].
pub fn audit_tail_count(m: &pb::AuditTailRequest) -> usize {
    match m.count {
        0 => 20,
        n => n.min(MAX_AUDIT_TAIL) as usize,
    }
}

/// A key-value request on the secret `scope`/`key`.
fn secret<'a>(rpc: &'static str, op: Operation, scope: &'a str, key: &'a str) -> Ask<'a> {
    Ask {
        rpc,
        op,
        scope,
        key,
        names_a_secret: true,
    }
}

/// A transit request on caller data bound to `context`.
fn transit<'a>(rpc: &'static str, op: Operation, context: &'a str) -> Ask<'a> {
    Ask {
        rpc,
        op,
        scope: "transit",
        key: context,
        names_a_secret: false,
    }
}

/// An administration request: `op` is `Admin` (key management) or `Audit` (the audit log);
/// `key` is `*`, or [`STATUS_KEY`] for Status, which `audit` may call as well.
fn admin(rpc: &'static str, op: Operation, key: &'static str) -> Ask<'static> {
    Ask {
        rpc,
        op,
        scope: ADMIN_SCOPE,
        key,
        names_a_secret: false,
    }
}

impl Asks for pb::PutRequest {
    fn ask(&self) -> Ask<'_> {
        secret("put", Operation::Write, &self.scope, &self.key)
    }
}

impl Asks for pb::GetRequest {
    fn ask(&self) -> Ask<'_> {
        secret("get", Operation::Read, &self.scope, &self.key)
    }
}

impl Asks for pb::DeleteRequest {
    fn ask(&self) -> Ask<'_> {
        secret("delete", Operation::Delete, &self.scope, &self.key)
    }
}

impl Asks for pb::ListRequest {
    fn ask(&self) -> Ask<'_> {
        Ask {
            rpc: "list",
            op: Operation::List,
            scope: self.scope.as_deref().unwrap_or("*"),
            key: "*",
            names_a_secret: false,
        }
    }
}

impl Asks for pb::SealRequest {
    fn ask(&self) -> Ask<'_> {
        transit("seal", Operation::Seal, &self.context)
    }
}

impl Asks for pb::OpenRequest {
    fn ask(&self) -> Ask<'_> {
        transit("open", Operation::Open, &self.context)
    }
}

/// Rewrap opens and then seals: this is the first ask; the second is the same with
/// [`Operation::Seal`].
impl Asks for pb::RewrapRequest {
    fn ask(&self) -> Ask<'_> {
        transit("rewrap", Operation::Open, &self.context)
    }
}

impl Asks for pb::GenerateDataKeyRequest {
    fn ask(&self) -> Ask<'_> {
        transit("generate_data_key", Operation::Seal, &self.context)
    }
}

macro_rules! admin_asks {
    ($($request:ty => $rpc:literal, $op:ident, $key:expr);* $(;)?) => {
        $(impl Asks for $request {
            fn ask(&self) -> Ask<'_> {
                admin($rpc, Operation::$op, $key)
            }
        })*
    };
}

admin_asks! {
    pb::StatusRequest => "status", Admin, STATUS_KEY;
    pb::UnlockRequest => "unlock", Admin, "*";
    pb::LockRequest => "lock", Admin, "*";
    pb::RotateRequest => "rotate", Admin, "*";
    pb::KekCheckRequest => "kek_check", Admin, "*";
    pb::AuditTailRequest => "audit_tail", Audit, "*";
    pb::AuditVerifyRequest => "audit_verify", Audit, "*";
    pb::AuditRotateRequest => "audit_rotate", Admin, "*";
}
