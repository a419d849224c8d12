//! The `grpc_requests` fuzz target's check, shared by the target
//! (fuzz/fuzz_targets/grpc_requests.rs) and the corpus replay (tests/fuzz_corpus.rs).
//!
//! The input's first byte picks the request type (its value modulo 16, in the order of the
//! service's RPCs); the rest is decoded as that message with prost, as tonic decodes a
//! request, and goes through the service's checks of a request's own contents
//! (`vaultd::service::checks`): the ask the gates and the audit log see, the name validation
//! the gates run after the ACL, the value size limit of Put, the key length of
//! GenerateDataKey and the record count of AuditTail. The gates before those (lock,
//! principal, rate limit, ACL) depend on the caller's certificate, not on the bytes.

use std::fmt::Debug;

use prost::Message;
use proto::v1 as pb;
use tonic::{Code, Status};
use vaultd::acl::Operation;
use vaultd::service::checks::{
    Asks, DATA_KEY_LEN, MAX_AUDIT_TAIL, audit_tail_count, check_names, check_value_size,
    data_key_len,
};

/// A small value limit, so that fuzzed values fall on both sides of it.
const MAX_SECRET_BYTES: usize = 64;
/// Longest refusal: names are cut to 80 characters (at most 10 bytes each, escaped).
const MAX_ERROR_LEN: usize = 1024;

/// The message in `bytes`, if it decodes, after checking that it re-encodes to bytes that
/// decode to the same message.
fn decoded<M: Message + Default + PartialEq + Debug>(bytes: &[u8]) -> Option<M> {
    let message = M::decode(bytes).ok()?;
    let again = M::decode(message.encode_to_vec().as_slice()).expect("re-encoded message");
    assert_eq!(
        again, message,
        "the message changed through encode and decode"
    );
    Some(message)
}

/// A refusal of a request's contents: INVALID_ARGUMENT with a bounded message.
fn assert_refusal(status: &Status) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().len() <= MAX_ERROR_LEN,
        "refusal of {} bytes",
        status.message().len()
    );
}

/// Runs the gates' name check on `m`'s ask: whether it passes, after checking that a pass on
/// a secret's address means the vault's own validation passes too.
fn names_pass<M: Asks>(m: &M) -> bool {
    let ask = m.ask();
    match check_names(&ask) {
        Ok(()) => {
            if ask.names_a_secret {
                vault::Scope::parse(ask.scope).expect("the gates passed an invalid scope");
                vault::check_key(ask.key).expect("the gates passed an invalid key name");
            }
            true
        }
        Err(status) => {
            assert!(
                ask.names_a_secret,
                "{} refused names it does not check",
                ask.rpc
            );
            assert_refusal(&status);
            false
        }
    }
}

/// A key-value request's ask is on the secret the message names.
fn assert_secret_ask<M: Asks>(m: &M, scope: &str, key: &str, op: Operation) {
    let ask = m.ask();
    assert!(ask.names_a_secret && ask.op == op);
    assert_eq!((ask.scope, ask.key), (scope, key));
}

/// A transit request's ask is on the caller's context.
fn assert_transit_ask<M: Asks>(m: &M, context: &str, op: Operation) {
    let ask = m.ask();
    assert!(!ask.names_a_secret && ask.op == op);
    assert_eq!((ask.scope, ask.key), ("transit", context));
}

/// An administration request's ask: key management (`Admin`) on `*`, the status (`Admin`
/// on `status`, which `audit` may call too) or the audit log (`Audit`).
fn admin<M: Asks + Message + Default + PartialEq + Debug>(
    bytes: &[u8],
    op: Operation,
    key: &str,
) -> Option<M> {
    let m: M = decoded(bytes)?;
    let ask = m.ask();
    assert!(ask.op == op && !ask.names_a_secret);
    assert_eq!((ask.scope, ask.key), ("admin", key));
    Some(m)
}

/// The check: `None` when the bytes do not decode as the request, else whether the
/// request's contents pass the service's checks.
pub fn check_grpc_request(data: &[u8]) -> Option<bool> {
    let (&selector, bytes) = data.split_first()?;
    let valid = match selector % 16 {
        0 => {
            let m: pb::PutRequest = decoded(bytes)?;
            assert_secret_ask(&m, &m.scope, &m.key, Operation::Write);
            let size = check_value_size(&m, MAX_SECRET_BYTES);
            assert_eq!(size.is_ok(), m.value.len() <= MAX_SECRET_BYTES);
            if let Err(status) = &size {
                assert_refusal(status);
            }
            names_pass(&m) && size.is_ok()
        }
        1 => {
            let m: pb::GetRequest = decoded(bytes)?;
            assert_secret_ask(&m, &m.scope, &m.key, Operation::Read);
            names_pass(&m)
        }
        2 => {
            let m: pb::DeleteRequest = decoded(bytes)?;
            assert_secret_ask(&m, &m.scope, &m.key, Operation::Delete);
            names_pass(&m)
        }
        3 => {
            let m: pb::ListRequest = decoded(bytes)?;
            let ask = m.ask();
            assert!(ask.op == Operation::List && !ask.names_a_secret);
            assert_eq!(ask.scope, m.scope.as_deref().unwrap_or("*"));
            names_pass(&m)
        }
        4 => {
            let m: pb::SealRequest = decoded(bytes)?;
            assert_transit_ask(&m, &m.context, Operation::Seal);
            names_pass(&m)
        }
        5 => {
            let m: pb::OpenRequest = decoded(bytes)?;
            assert_transit_ask(&m, &m.context, Operation::Open);
            names_pass(&m)
        }
        6 => {
            let m: pb::RewrapRequest = decoded(bytes)?;
            assert_transit_ask(&m, &m.context, Operation::Open);
            names_pass(&m)
        }
        7 => {
            let m: pb::GenerateDataKeyRequest = decoded(bytes)?;
            assert_transit_ask(&m, &m.context, Operation::Seal);
            let length = data_key_len(&m);
            match &length {
                Ok(n) => {
                    let n = u32::try_from(*n).expect("small");
                    assert!(DATA_KEY_LEN.contains(&n));
                    assert!(m.length == 0 && n == 32 || m.length == n);
                }
                Err(status) => {
                    assert!(m.length != 0 && !DATA_KEY_LEN.contains(&m.length));
                    assert_refusal(status);
                }
            }
            names_pass(&m) && length.is_ok()
        }
        8 => names_pass(&admin::<pb::StatusRequest>(
            bytes,
            Operation::Admin,
            "status",
        )?),
        9 => names_pass(&admin::<pb::UnlockRequest>(bytes, Operation::Admin, "*")?),
        10 => names_pass(&admin::<pb::LockRequest>(bytes, Operation::Admin, "*")?),
        11 => names_pass(&admin::<pb::RotateRequest>(bytes, Operation::Admin, "*")?),
        12 => names_pass(&admin::<pb::KekCheckRequest>(bytes, Operation::Admin, "*")?),
        13 => {
            let m = admin::<pb::AuditTailRequest>(bytes, Operation::Audit, "*")?;
            let count = audit_tail_count(&m);
            assert!((1..=MAX_AUDIT_TAIL as usize).contains(&count), "{count}");
            names_pass(&m)
        }
        14 => names_pass(&admin::<pb::AuditVerifyRequest>(
            bytes,
            Operation::Audit,
            "*",
        )?),
        _ => names_pass(&admin::<pb::AuditRotateRequest>(
            bytes,
            Operation::Admin,
            "*",
        )?),
    };
    Some(valid)
}
