//! Idempotency keys of dispatcher commands and escalations opened by hand. Office events
//! themselves are recorded through the office unit (`units.rs`).

use super::{PgError, PgStore, signed};
use crate::store::{EscalationRecord, IdempotencyState, StoreResult};
use doorstep_shared::EscalationId;

/// How often `begin_idempotent` retries when the key it collided with vanished (abandoned by
/// its owner between our insert and our read) before it calls the situation transient.
const BEGIN_TRIES: usize = 3;

impl PgStore {
    /// Claims `key`, or reports who has it. The insert is `ON CONFLICT DO NOTHING`, so a racing
    /// claim waits for the other transaction and then sees its row; the row is read in a second
    /// statement (a newer snapshot than the insert's).
    pub(super) fn begin_idempotent_impl(
        &self,
        key: &str,
        request_hash: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> StoreResult<IdempotencyState> {
        self.run(async |c| {
            for _ in 0..BEGIN_TRIES {
                let inserted = c
                    .execute(
                        "INSERT INTO idempotency_keys (key, request_hash, created_ms) VALUES ($1, $2, $3)
                         ON CONFLICT (key) DO NOTHING",
                        &[&key, &request_hash, &signed(now_ms)?],
                    )
                    .await?;
                // A claim its server never finished is free again once its lease has run out.
                let reclaimed = inserted == 0
                    && c.execute(
                        "UPDATE idempotency_keys SET created_ms = $3
                         WHERE key = $1 AND request_hash = $2 AND NOT done AND created_ms <= $4",
                        &[
                            &key,
                            &request_hash,
                            &signed(now_ms)?,
                            &signed(now_ms.saturating_sub(lease_ms))?,
                        ],
                    )
                    .await?
                        == 1;
                if inserted == 1 || reclaimed {
                    return Ok(IdempotencyState::Started);
                }
                let Some(r) = c
                    .query_opt(
                        "SELECT request_hash, done, status, body FROM idempotency_keys WHERE key = $1",
                        &[&key],
                    )
                    .await?
                else {
                    continue;
                };
                let hash: &str = r.try_get(0)?;
                let done: bool = r.try_get(1)?;
                return Ok(match (hash == request_hash, done) {
                    (false, _) => IdempotencyState::Mismatch,
                    (true, false) => IdempotencyState::InProgress,
                    (true, true) => IdempotencyState::Completed {
                        status: r
                            .try_get::<_, Option<i64>>(2)?
                            .map(|s| {
                                u16::try_from(s)
                                    .map_err(|_| PgError::Data(format!("bad status {s}")))
                            })
                            .transpose()?
                            .unwrap_or(200),
                        body: r.try_get::<_, Option<String>>(3)?.unwrap_or_default(),
                    },
                });
            }
            Err(PgError::Contended(format!(
                "idempotency key {key:?} kept changing hands"
            )))
        })
    }

    pub(super) fn finish_idempotent_impl(
        &self,
        key: &str,
        status: u16,
        body: &str,
    ) -> StoreResult<()> {
        self.run(async |c| {
            c.execute(
                "UPDATE idempotency_keys SET done = TRUE, status = $2, body = $3 WHERE key = $1",
                &[&key, &i64::from(status), &body],
            )
            .await?;
            Ok(())
        })
    }

    pub(super) fn abandon_idempotent_impl(&self, key: &str) -> StoreResult<()> {
        self.run(async |c| {
            c.execute(
                "DELETE FROM idempotency_keys WHERE key = $1 AND NOT done",
                &[&key],
            )
            .await?;
            Ok(())
        })
    }

    pub(super) fn open_escalation_impl(&self, rec: &EscalationRecord<'_>) -> StoreResult<()> {
        self.run(async |c| super::units::insert_escalation(&*c, rec).await)
    }

    pub(super) fn issue_live_ticket_impl(
        &self,
        ticket_hash: &str,
        dispatcher: &str,
        expires_at_ms: u64,
        now_ms: u64,
    ) -> StoreResult<()> {
        self.run(async |c| {
            c.execute(
                "DELETE FROM live_tickets WHERE expires_at_ms <= $1",
                &[&signed(now_ms)?],
            )
            .await?;
            c.execute(
                "INSERT INTO live_tickets (ticket_hash, dispatcher, expires_at_ms) VALUES ($1, $2, $3)",
                &[&ticket_hash, &dispatcher, &signed(expires_at_ms)?],
            )
            .await?;
            Ok(())
        })
    }

    pub(super) fn redeem_live_ticket_impl(
        &self,
        ticket_hash: &str,
        now_ms: u64,
    ) -> StoreResult<Option<String>> {
        self.run(async |c| {
            let Some(r) = c
                .query_opt(
                    "DELETE FROM live_tickets WHERE ticket_hash = $1 RETURNING dispatcher, expires_at_ms",
                    &[&ticket_hash],
                )
                .await?
            else {
                return Ok(None);
            };
            let expires: i64 = r.try_get(1)?;
            Ok((expires > signed(now_ms)?).then(|| r.try_get(0)).transpose()?)
        })
    }

    pub(super) fn resolve_escalation_impl(&self, id: EscalationId) -> StoreResult<bool> {
        self.run(async |c| {
            let n = c
                .execute(
                    "UPDATE escalations SET resolved = TRUE WHERE escalation_id = $1 AND NOT resolved",
                    &[&id.to_string()],
                )
                .await?;
            Ok(n == 1)
        })
    }
}
