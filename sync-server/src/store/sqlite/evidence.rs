//! Reading a stop's proof events back for dispute re-verification.

use super::db;
use super::{SqliteStore, id, json};
use crate::evidence::{EvidenceLog, LoggedProof, chain_link};
use doorstep_shared::event::EventPayload;
use doorstep_shared::{DeviceId, HlcStamp, StopId};
use rusqlite::params;

impl EvidenceLog for SqliteStore {
    fn logged_proofs(&self, stop_id: StopId) -> crate::store::StoreResult<Vec<LoggedProof>> {
        db(|| {
            let conn = self.read();
            let mut stmt = conn.prepare_cached(
                "SELECT e.event_id, e.device_id, e.device_seq, e.hlc_wall, e.hlc_logical, e.status,
                    e.payload, d.public_key
             FROM events e LEFT JOIN devices d ON d.device_id = e.device_id
             WHERE e.stop_id = ?1 AND e.kind = 'proof_captured' AND e.device_id IS NOT NULL
             ORDER BY e.log_seq",
            )?;
            let rows = stmt
                .query_map([stop_id.to_string()], |r| {
                    Ok((
                        id(r.get(0)?)?,
                        id::<DeviceId>(r.get(1)?)?,
                        r.get::<_, i64>(2)? as u64,
                        HlcStamp {
                            wall_ms: r.get::<_, i64>(3)? as u64,
                            logical: r.get::<_, i64>(4)? as u32,
                        },
                        r.get::<_, String>(5)?,
                        json::<EventPayload>(&r.get::<_, String>(6)?)?,
                        r.get::<_, Option<String>>(7)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            // Earlier proofs of the device, newest first; the head is the first with a chain link.
            let mut prev_stmt = conn.prepare_cached(
                "SELECT payload, hlc_wall, hlc_logical FROM events
             WHERE device_id = ?1 AND kind = 'proof_captured' AND device_seq < ?2
             ORDER BY device_seq DESC",
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for (event_id, device_id, device_seq, hlc, status, payload, key) in rows {
                let EventPayload::ProofCaptured(proof) = payload else {
                    continue;
                };
                let mut previous_statement = String::new();
                let mut earlier =
                    prev_stmt.query(params![device_id.to_string(), device_seq as i64])?;
                while let Some(r) = earlier.next()? {
                    let payload = json::<EventPayload>(&r.get::<_, String>(0)?)?;
                    let hlc = HlcStamp {
                        wall_ms: r.get::<_, i64>(1)? as u64,
                        logical: r.get::<_, i64>(2)? as u32,
                    };
                    if let Some(link) = chain_link(&device_id, hlc, &payload) {
                        previous_statement = link;
                        break;
                    }
                }
                drop(earlier);
                out.push(LoggedProof {
                    event_id,
                    device_id,
                    device_seq,
                    hlc,
                    status,
                    proof,
                    registered_key: key,
                    previous_statement,
                });
            }
            Ok(out)
        })
    }
}
