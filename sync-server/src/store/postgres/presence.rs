//! A device's location fixes around an attempt, for presence scoring.

use super::PgStore;
use super::reads::{STORED_EVENT_COLUMNS, stored_event};
use crate::presence::LocationLog;
use crate::store::StoreResult;
use doorstep_shared::DeviceId;
use doorstep_shared::protocol::StoredEvent;

/// A fix is usually logged soon after it is taken; the exact filter on the fix time is the
/// caller's, this only narrows the read.
const FIX_LOG_SLACK_MS: i64 = 10 * 60_000;

impl LocationLog for PgStore {
    fn location_fixes(
        &self,
        device: DeviceId,
        from_ms: u64,
        to_ms: u64,
    ) -> StoreResult<Vec<StoredEvent>> {
        let from = i64::try_from(from_ms).unwrap_or(i64::MAX) - FIX_LOG_SLACK_MS;
        let to = i64::try_from(to_ms)
            .unwrap_or(i64::MAX)
            .saturating_add(FIX_LOG_SLACK_MS);
        self.run(async |c| {
            c.query(
                &format!(
                    "SELECT {STORED_EVENT_COLUMNS} FROM events
                     WHERE device_id = $1 AND kind = 'location_fixed' AND status = 'applied'
                       AND device_time_ms - COALESCE(clock_offset_ms, 0) BETWEEN $2 AND $3
                     ORDER BY device_seq"
                ),
                &[&device.to_string(), &from, &to],
            )
            .await?
            .iter()
            .map(stored_event)
            .collect()
        })
    }
}
