//! The sync side of the outbox: what to send, what the server said, what it sent back.

use super::{Outbox, OutboxError, from_json, meta_get, meta_set, projection, to_json};
use doorstep_shared::protocol::{PullResponse, PushResponse, PushStatus};
use doorstep_shared::{EventEnvelope, EventId, EventPayload, HybridClock, RouteId, StopId};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One event that may go into the next push, with its size as stored (uncompressed JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingEvent {
    pub device_seq: u64,
    pub raw_bytes: usize,
}

/// Counts for the sync status and the queue report sent with every push.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    pub total_events: u64,
    pub queued: u64,
    pub oldest_unsynced_at_ms: Option<u64>,
    pub rejected: u64,
    pub conflicts: u64,
}

/// An event the server settled without applying it: kept and shown, never dropped.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export_to = "core/"))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledProblem {
    pub device_seq: u64,
    pub event_id: EventId,
    pub kind: String,
    pub stop_id: Option<StopId>,
    pub status: PushStatus,
    pub code: Option<String>,
    pub detail: Option<String>,
}

fn status_str(s: PushStatus) -> &'static str {
    match s {
        PushStatus::Applied => "applied",
        PushStatus::Duplicate => "duplicate",
        PushStatus::Conflict => "conflict",
        PushStatus::Rejected => "rejected",
        PushStatus::Deferred => "deferred",
        PushStatus::Gap => "gap",
    }
}

impl Outbox {
    /// Where the next push starts: the first unsettled event, or earlier when the server said it
    /// has less than we think (a `gap`, e.g. after a server restore). `None`: nothing to send.
    pub fn send_from(&self) -> Result<Option<u64>, OutboxError> {
        let first_unsettled: Option<u64> = self.conn.query_row(
            "SELECT MIN(e.device_seq) FROM events e LEFT JOIN outcomes o USING (device_seq)
             WHERE o.device_seq IS NULL",
            [],
            |r| r.get(0),
        )?;
        let resume = self.meta_u64("resume_from")?;
        let max: Option<u64> =
            self.conn
                .query_row("SELECT MAX(device_seq) FROM events", [], |r| r.get(0))?;
        let from = match (first_unsettled, resume) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(from.filter(|f| max.is_some_and(|m| *f <= m)))
    }

    /// Up to `limit` events from `from_seq` on, in order.
    pub fn pending(&self, from_seq: u64, limit: usize) -> Result<Vec<PendingEvent>, OutboxError> {
        let mut q = self.conn.prepare_cached(
            "SELECT device_seq, length(envelope) FROM events WHERE device_seq >= ?1
             ORDER BY device_seq LIMIT ?2",
        )?;
        let rows = q.query_map(params![from_seq, limit as i64], |r| {
            Ok(PendingEvent {
                device_seq: r.get(0)?,
                raw_bytes: r.get::<_, i64>(1)? as usize,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The stored envelopes with `first <= device_seq <= last`, in order.
    pub fn envelopes(&self, first: u64, last: u64) -> Result<Vec<EventEnvelope>, OutboxError> {
        let mut q = self.conn.prepare_cached(
            "SELECT envelope FROM events WHERE device_seq BETWEEN ?1 AND ?2 ORDER BY device_seq",
        )?;
        let rows = q.query_map(params![first, last], |r| r.get::<_, String>(0))?;
        rows.map(|j| from_json(&j?, "event envelope")).collect()
    }

    /// Every event this device ever recorded, in order (for reports and tests).
    pub fn all_events(&self) -> Result<Vec<EventEnvelope>, OutboxError> {
        self.envelopes(1, u64::MAX >> 1)
    }

    /// Records a push response: settled outcomes, the server's resume point, and a rebuilt
    /// projection for stops whose events the server refused. One transaction. Returns how many
    /// events became settled for the first time.
    pub fn record_push(&mut self, resp: &PushResponse, now_ms: u64) -> Result<u64, OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut newly = 0;
        let mut rebuild = BTreeSet::new();
        let mut reorder = BTreeSet::new();
        for r in &resp.results {
            if !r.status.is_settled() {
                continue;
            }
            let known: Option<(String, Option<String>, String)> = tx
                .query_row(
                    "SELECT event_id, stop_id, kind FROM events WHERE device_seq = ?1",
                    [r.device_seq],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()?;
            let Some((event_id, stop, kind)) = known else {
                tracing::warn!(
                    seq = r.device_seq,
                    "server answered for an event we never had"
                );
                continue;
            };
            if event_id != r.event_id.to_string() {
                tracing::warn!(seq = r.device_seq, "server answered for another event id");
                continue;
            }
            let effective = match (r.status, r.first_status) {
                (PushStatus::Duplicate, Some(first)) if first.is_settled() => first,
                (s, _) => s,
            };
            let before: Option<String> = tx
                .query_row(
                    "SELECT status FROM outcomes WHERE device_seq = ?1",
                    [r.device_seq],
                    |row| row.get(0),
                )
                .optional()?;
            if before.is_none() {
                newly += 1;
            }
            tx.execute(
                "INSERT INTO outcomes (device_seq, status, code, detail, settled_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (device_seq) DO UPDATE SET status = ?2, code = ?3, detail = ?4",
                params![
                    r.device_seq,
                    status_str(effective),
                    r.code.map(|c| c.as_str()),
                    r.detail,
                    now_ms
                ],
            )?;
            let refused = matches!(effective, PushStatus::Rejected | PushStatus::Conflict);
            let was_refused = matches!(before.as_deref(), Some("rejected" | "conflict"));
            if (refused || was_refused)
                && let Some(stop) = stop.and_then(|s| s.parse::<StopId>().ok())
            {
                rebuild.insert(stop);
            }
            if (refused || was_refused) && kind == "route_replanned" {
                reorder.insert(r.device_seq);
            }
        }
        for stop in rebuild {
            projection::rebuild_stop(&tx, stop)?;
        }
        for route in replanned_routes(&tx, &reorder)? {
            projection::rebuild_route_order(&tx, route)?;
        }
        // The server has settled everything up to `last_applied_seq`; resume right after it.
        meta_set(&tx, "resume_from", &(resp.last_applied_seq + 1).to_string())?;
        meta_set(&tx, "clock_offset_ms", &resp.clock_offset_ms.to_string())?;
        meta_set(&tx, "last_push_ok_ms", &now_ms.to_string())?;
        tx.commit()?;
        Ok(newly)
    }

    /// `device clock - server clock` from the last push, if any.
    pub fn clock_offset_ms(&self) -> Result<Option<i64>, OutboxError> {
        Ok(self.meta("clock_offset_ms")?.and_then(|v| v.parse().ok()))
    }

    pub(crate) fn set_clock_offset_ms(&self, offset: i64) -> Result<(), OutboxError> {
        self.set_meta("clock_offset_ms", &offset.to_string())
    }

    pub fn pull_cursor(&self) -> Result<u64, OutboxError> {
        Ok(self.meta_u64("pull_cursor")?.unwrap_or(0))
    }

    /// Applies pulled office changes and advances the cursor, in one transaction.
    pub fn record_pull(&mut self, resp: &PullResponse, now_ms: u64) -> Result<(), OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last = super::last_stamp(&tx)?;
        let mut clock = HybridClock::resume(last, super::append::MAX_CLOCK_DRIFT_MS);
        for change in &resp.changes {
            if let Some(stop) = change.payload.stop_id() {
                let _span = tracing::debug_span!("pull_change", stop_id = %stop).entered();
            }
            projection::apply_change(&tx, change)?;
            if let Err(e) = clock.observe(change.hlc, now_ms) {
                tracing::warn!(error = %e, "office stamp ignored for the local clock");
            }
        }
        meta_set(&tx, "hlc", &to_json(&clock.last())?)?;
        let cursor = meta_get(&tx, "pull_cursor")?
            .and_then(|c| c.parse::<u64>().ok())
            .unwrap_or(0)
            .max(resp.cursor);
        meta_set(&tx, "pull_cursor", &cursor.to_string())?;
        meta_set(&tx, "last_pull_ok_ms", &now_ms.to_string())?;
        tx.commit()?;
        Ok(())
    }

    pub fn queue_stats(&self) -> Result<QueueStats, OutboxError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*),
                    COUNT(*) FILTER (WHERE o.device_seq IS NULL),
                    MIN(e.created_at_ms) FILTER (WHERE o.device_seq IS NULL),
                    COUNT(*) FILTER (WHERE o.status = 'rejected'),
                    COUNT(*) FILTER (WHERE o.status = 'conflict')
             FROM events e LEFT JOIN outcomes o USING (device_seq)",
            [],
            |r| {
                Ok(QueueStats {
                    total_events: r.get(0)?,
                    queued: r.get(1)?,
                    oldest_unsynced_at_ms: r.get(2)?,
                    rejected: r.get(3)?,
                    conflicts: r.get(4)?,
                })
            },
        )?)
    }

    /// Rejected and conflicting events, newest first: they stay visible until a human acts.
    pub fn problems(&self) -> Result<Vec<SettledProblem>, OutboxError> {
        let mut q = self.conn.prepare(
            "SELECT e.device_seq, e.event_id, e.kind, e.stop_id, o.status, o.code, o.detail
             FROM events e JOIN outcomes o USING (device_seq)
             WHERE o.status IN ('rejected', 'conflict') ORDER BY e.device_seq DESC",
        )?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get::<_, u64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, id, kind, stop, status, code, detail) = row?;
            out.push(SettledProblem {
                device_seq: seq,
                event_id: id.parse().map_err(|_| OutboxError::Decode {
                    what: "event id",
                    detail: id.clone(),
                })?,
                kind,
                stop_id: stop.and_then(|s| s.parse().ok()),
                status: if status == "conflict" {
                    PushStatus::Conflict
                } else {
                    PushStatus::Rejected
                },
                code,
                detail,
            });
        }
        Ok(out)
    }

    /// The server outcome recorded for one event, if settled.
    pub fn outcome(&self, device_seq: u64) -> Result<Option<String>, OutboxError> {
        Ok(self
            .conn
            .query_row(
                "SELECT status FROM outcomes WHERE device_seq = ?1",
                [device_seq],
                |r| r.get(0),
            )
            .optional()?)
    }
}

/// The routes the replans at `seqs` reorder.
fn replanned_routes(
    conn: &rusqlite::Connection,
    seqs: &BTreeSet<u64>,
) -> Result<BTreeSet<RouteId>, OutboxError> {
    let mut routes = BTreeSet::new();
    for seq in seqs {
        let json: String = conn.query_row(
            "SELECT envelope FROM events WHERE device_seq = ?1",
            [seq],
            |r| r.get(0),
        )?;
        let env: EventEnvelope = from_json(&json, "event envelope")?;
        if let EventPayload::RouteReplanned(replan) = env.payload {
            routes.insert(replan.route_id);
        }
    }
    Ok(routes)
}
