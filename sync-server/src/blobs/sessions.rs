//! Where upload sessions are kept between requests: in the database (SQLite backend, so a
//! session survives a server restart) or in memory (tests, benches, the deterministic
//! simulator). The bytes received so far live in the blob store's staging file of the session.

use crate::store::StoreResult;
pub use crate::store::{SessionRecord, UploadSessions};
use std::collections::HashMap;
use std::sync::Mutex;

/// Sessions in memory: lost on restart.
#[derive(Default)]
pub struct MemorySessions(Mutex<HashMap<String, SessionRecord>>);

impl MemorySessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionRecord>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl UploadSessions for MemorySessions {
    fn insert_session(&self, s: &SessionRecord) -> StoreResult<()> {
        self.map().insert(s.id.clone(), s.clone());
        Ok(())
    }
    fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        Ok(self.map().get(id).cloned())
    }
    fn advance_session(&self, id: &str, offset: u64, expires_at_ms: u64) -> StoreResult<()> {
        if let Some(s) = self.map().get_mut(id) {
            s.offset = offset;
            s.expires_at_ms = expires_at_ms;
        }
        Ok(())
    }
    fn remove_session(&self, id: &str) -> StoreResult<()> {
        self.map().remove(id);
        Ok(())
    }
    fn remove_expired_sessions(&self, now_ms: u64) -> StoreResult<Vec<String>> {
        let mut map = self.map();
        let expired: Vec<String> = map
            .values()
            .filter(|s| s.expires_at_ms <= now_ms)
            .map(|s| s.id.clone())
            .collect();
        for id in &expired {
            map.remove(id);
        }
        Ok(expired)
    }
}
