//! Administration: Status, Unlock, Lock, Rotate, KekCheck, and the audit log (tail, verify,
//! rotate).

use std::sync::Arc;

use zeroize::Zeroize;

use proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::checks::{Asks, audit_tail_count};
use super::{Api, vault_err};
use crate::gates::CallRecord;

/// Status is answered even when its record cannot be written: it is how an operator learns
/// that the audit log failed, and it changes nothing and reveals no secret.
pub(super) async fn status(
    api: &Api,
    request: Request<pb::StatusRequest>,
) -> Result<Response<pb::StatusResponse>, Status> {
    let ask = request.get_ref().ask();
    let caller = api.gates.admit(&request, ask).await?;
    let call = CallRecord::new(&caller, request.remote_addr(), ask);
    let audit = audit_status(&api.gates.audit().status());
    let vault = Arc::clone(&api.gates.vault);
    let outcome = api
        .gates
        .pool
        .run(move || {
            let s = vault.status().map_err(vault_err)?;
            Ok(pb::StatusResponse {
                store: s.store.to_string(),
                mode: s.mode.to_string(),
                locked: s.locked,
                secrets: s.secrets,
                keks: s
                    .keks
                    .iter()
                    .map(|k| pb::KekInfo {
                        id: k.id.clone(),
                        uri: k.uri.clone(),
                        health: k.health.to_string(),
                        assurance: k.assurance.to_string(),
                    })
                    .collect(),
                missing_keks: s.missing_keks,
                epochs: s.epochs,
                min_decryption_version: s.min_decryption_version,
                locked_bytes: s.memory.locked_bytes,
                unlocked_bytes: s.memory.unlocked_bytes,
                audit: Some(audit),
                cache_lookups: s.cache_lookups,
                cache_hits: s.cache_hits,
            })
        })
        .await
        .and_then(|r| r);
    if let Err(unrecorded) = api.gates.record_outcome(&call, &outcome).await {
        log::warn!(
            "status answered without its audit record: {}",
            unrecorded.message()
        );
    }
    outcome.map(Response::new)
}

fn audit_status(s: &vault::audit::AuditStatus) -> pb::AuditStatus {
    pb::AuditStatus {
        state: if s.failed.is_some() { "failed" } else { "ok" }.to_owned(),
        reason: s.failed.clone().unwrap_or_default(),
        records: s.records,
        head_seq: s.head_seq,
        anchored_seq: s.anchored_seq,
        checkpoint_public_key: s.checkpoint_public_key.clone(),
        sink_error: s.sink_error.clone().unwrap_or_default(),
        segment: s.segment,
    }
}

pub(super) async fn unlock(
    api: &Api,
    mut request: Request<pb::UnlockRequest>,
) -> Result<Response<pb::UnlockResponse>, Status> {
    // The passphrase goes into locked memory at once; the request's copy is wiped.
    let given = &mut request.get_mut().passphrase;
    let passphrase = if given.is_empty() {
        None
    } else {
        Some(envelope::SecretBytes::from_slice(given).map_err(|e| vault_err(e.into()))?)
    };
    given.zeroize();
    let keks = Arc::clone(&api.keks);
    api.change(
        &request,
        request.get_ref().ask(),
        move |v| {
            let built = keks.build(passphrase.as_ref()).map_err(vault_err)?;
            v.unlock(built.clone()).map_err(vault_err)?;
            keks.hold(built);
            Ok(())
        },
        |()| None,
    )
    .await?;
    Ok(Response::new(pb::UnlockResponse {}))
}

pub(super) async fn lock(
    api: &Api,
    request: Request<pb::LockRequest>,
) -> Result<Response<pb::LockResponse>, Status> {
    let keks = Arc::clone(&api.keks);
    api.change(
        &request,
        request.get_ref().ask(),
        move |v| {
            keks.drop_all();
            v.lock().map_err(vault_err)
        },
        |()| None,
    )
    .await?;
    Ok(Response::new(pb::LockResponse {}))
}

pub(super) async fn rotate(
    api: &Api,
    request: Request<pb::RotateRequest>,
) -> Result<Response<pb::RotateResponse>, Status> {
    let epoch = api
        .change(
            &request,
            request.get_ref().ask(),
            |v| v.rotate().map_err(vault_err),
            |epoch| Some(u64::from(*epoch)),
        )
        .await?;
    Ok(Response::new(pb::RotateResponse { epoch }))
}

pub(super) async fn kek_check(
    api: &Api,
    request: Request<pb::KekCheckRequest>,
) -> Result<Response<pb::KekCheckResponse>, Status> {
    let keks = Arc::clone(&api.keks);
    let results = api
        .call(&request, request.get_ref().ask(), move |v| {
            let keks = keks.held_or_built().map_err(vault_err)?;
            Ok(keks
                .iter()
                .map(|k| {
                    let (state, detail) = match v.check_kek(k) {
                        vault::KekCheck::Ok => ("ok", String::new()),
                        vault::KekCheck::Unreachable(why) => ("unreachable", why),
                        vault::KekCheck::Failed(why) => ("failed", why),
                    };
                    pb::KekCheckResult {
                        id: k.provider.id().to_string(),
                        state: state.into(),
                        detail,
                    }
                })
                .collect())
        })
        .await?;
    Ok(Response::new(pb::KekCheckResponse { results }))
}

pub(super) async fn audit_tail(
    api: &Api,
    request: Request<pb::AuditTailRequest>,
) -> Result<Response<pb::AuditTailResponse>, Status> {
    let count = audit_tail_count(request.get_ref());
    let audit = Arc::clone(api.gates.audit());
    let records = api
        .call(&request, request.get_ref().ask(), move |_| {
            let records = vault::audit::tail(audit.path(), count).map_err(vault_err)?;
            records
                .iter()
                .map(|r| serde_json::to_string(r).map_err(|e| Status::internal(e.to_string())))
                .collect()
        })
        .await?;
    Ok(Response::new(pb::AuditTailResponse { records }))
}

pub(super) async fn audit_verify(
    api: &Api,
    request: Request<pb::AuditVerifyRequest>,
) -> Result<Response<pb::AuditVerifyResponse>, Status> {
    let audit = Arc::clone(api.gates.audit());
    let report = api
        .call(&request, request.get_ref().ask(), move |_| {
            audit.verify().map_err(vault_err)
        })
        .await?;
    Ok(Response::new(pb::AuditVerifyResponse {
        records: report.records,
        head_seq: report.head_seq,
        anchor_seq: report.anchor_seq.unwrap_or(0),
        segments: report.segments,
    }))
}

/// A state change of the log: `started` goes to the segment being closed, `outcome` (with
/// the new segment's number as its version) to the new one, after the record opening it.
pub(super) async fn audit_rotate(
    api: &Api,
    request: Request<pb::AuditRotateRequest>,
) -> Result<Response<pb::AuditRotateResponse>, Status> {
    let audit = Arc::clone(api.gates.audit());
    let rotated = api
        .change(
            &request,
            request.get_ref().ask(),
            move |_| {
                audit
                    .rotate("asked for by an audit_rotate call (its started record is the last of the closed segment)")
                    .map_err(vault_err)
            },
            |rotated| Some(rotated.segment),
        )
        .await?;
    Ok(Response::new(pb::AuditRotateResponse {
        closed: rotated.closed,
        archive: rotated
            .archive
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        segment: rotated.segment,
        first_seq: rotated.first_seq,
    }))
}
