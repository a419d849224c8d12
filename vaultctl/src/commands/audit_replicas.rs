//! `vaultctl audit verify` on a vault whose store replicas share: what the replicas' audit
//! chains and the leader's checkpoints showed, each defect naming its chain.

use vault::audit::display_text;
use vault::audit::replicas::ReplicasReport;

/// Prints `report` (defects to standard error) unless `json`; its JSON form.
pub(crate) fn show(report: &ReplicasReport, json: bool) -> serde_json::Value {
    let records: u64 = report.chains.iter().map(|c| c.records).sum();
    if !json {
        println!(
            "replica audit chains: {} chain(s), {records} record(s), {} checkpoint(s){}",
            report.chains.len(),
            report.checkpoints,
            if report.defects.is_empty() {
                ", all verify"
            } else {
                ""
            }
        );
        for chain in &report.chains {
            let checkpointed = chain.checkpointed_seq.map_or_else(
                || "not checkpointed yet".to_owned(),
                |s| format!("checkpointed through seq {s}"),
            );
            println!(
                "  {}: {} record(s) from seq {}, head at seq {}, {checkpointed}",
                display_text(&chain.chain),
                chain.records,
                chain.first_seq,
                chain.head_seq
            );
        }
        for defect in &report.defects {
            eprintln!("DAMAGED: {}", display_text(&defect.to_string()));
        }
    }
    let chains: Vec<_> = report
        .chains
        .iter()
        .map(|c| {
            serde_json::json!({
                "chain": c.chain, "started_ms": c.started_ms, "first_seq": c.first_seq,
                "records": c.records, "head_seq": c.head_seq, "checkpointed_seq": c.checkpointed_seq,
            })
        })
        .collect();
    let defects: Vec<String> = report.defects.iter().map(ToString::to_string).collect();
    serde_json::json!({
        "ok": report.defects.is_empty(), "checkpoints": report.checkpoints,
        "chains": chains, "defects": defects,
    })
}
