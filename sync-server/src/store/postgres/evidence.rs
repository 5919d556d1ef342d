//! Reading a stop's proof events back for dispute re-verification.

use super::reads::hlc;
use super::{PgResult, PgStore, id, json, signed, unsigned};
use crate::evidence::{EvidenceLog, LoggedProof, chain_link};
use crate::store::StoreResult;
use doorstep_shared::DeviceId;
use doorstep_shared::event::EventPayload;
use futures::TryStreamExt;

/// The chain head an earlier proof of `device` before `device_seq` left: the [`chain_link`] of
/// the newest one that has one, `''` when none has. Rows are streamed newest first and the scan
/// stops at the first link.
async fn previous_statement(
    c: &tokio_postgres::Client,
    device: &DeviceId,
    device_seq: i64,
) -> PgResult<String> {
    let device_text = device.to_string();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&device_text, &device_seq];
    let rows = c
        .query_raw(
            "SELECT payload, hlc_wall, hlc_logical FROM events
             WHERE device_id = $1 AND kind = 'proof_captured' AND device_seq < $2
             ORDER BY device_seq DESC",
            params,
        )
        .await?;
    let mut rows = std::pin::pin!(rows);
    while let Some(r) = rows.try_next().await? {
        let payload = json::<EventPayload>(r.try_get(0)?)?;
        if let Some(link) = chain_link(device, hlc(&r, 1, 2)?, &payload) {
            return Ok(link);
        }
    }
    Ok(String::new())
}

impl EvidenceLog for PgStore {
    fn logged_proofs(&self, stop_id: doorstep_shared::StopId) -> StoreResult<Vec<LoggedProof>> {
        self.run(async |c| {
            let rows = c
                .query(
                    "SELECT e.event_id, e.device_id, e.device_seq, e.hlc_wall, e.hlc_logical,
                            e.status, e.payload, d.public_key
                     FROM events e LEFT JOIN devices d ON d.device_id = e.device_id
                     WHERE e.stop_id = $1 AND e.kind = 'proof_captured' AND e.device_id IS NOT NULL
                     ORDER BY e.log_seq",
                    &[&stop_id.to_string()],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let EventPayload::ProofCaptured(proof) = json::<EventPayload>(r.try_get(6)?)?
                else {
                    continue;
                };
                let device_id: DeviceId = id(r.try_get(1)?)?;
                let device_seq = unsigned(r.try_get(2)?)?;
                out.push(LoggedProof {
                    event_id: id(r.try_get(0)?)?,
                    previous_statement: previous_statement(c, &device_id, signed(device_seq)?)
                        .await?,
                    device_id,
                    device_seq,
                    hlc: hlc(r, 3, 4)?,
                    status: r.try_get(5)?,
                    proof,
                    registered_key: r.try_get(7)?,
                });
            }
            Ok(out)
        })
    }
}
