//! Couriers, devices, enrollment codes and dispatcher tokens.

use super::SqlResult;
use super::{SqliteStore, id};
use crate::store::{DeviceAuth, DispatcherAuth};
use doorstep_shared::{CourierId, DeviceId};
use rusqlite::{OptionalExtension, params};

impl SqliteStore {
    /// Creates the courier if it is new; an existing courier is left exactly as it is (its
    /// name and region are not overwritten by whoever creates an enrollment code for it).
    pub(crate) fn create_courier_impl(
        &self,
        courier: CourierId,
        name: &str,
        region: &str,
    ) -> SqlResult<()> {
        self.write().execute(
            "INSERT INTO couriers (courier_id, name, region) VALUES (?1, ?2, ?3)
             ON CONFLICT(courier_id) DO NOTHING",
            params![courier.to_string(), name, region],
        )?;
        Ok(())
    }

    pub(crate) fn create_enrollment_code_impl(
        &self,
        courier: CourierId,
        code_hash: &str,
        expires: u64,
    ) -> SqlResult<()> {
        self.write().execute(
            "INSERT INTO enrollment_codes (code_hash, courier_id, expires_at_ms) VALUES (?1, ?2, ?3)",
            params![code_hash, courier.to_string(), expires as i64],
        )?;
        Ok(())
    }

    pub(crate) fn enroll_device_impl(
        &self,
        code_hash: &str,
        device: DeviceId,
        name: &str,
        token_hash: &str,
        public_key: Option<&str>,
        now_ms: u64,
    ) -> SqlResult<Option<CourierId>> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        let courier: Option<String> = tx
            .query_row(
                "UPDATE enrollment_codes SET used_by = ?1
                 WHERE code_hash = ?2 AND used_by IS NULL AND expires_at_ms > ?3
                 RETURNING courier_id",
                params![device.to_string(), code_hash, now_ms as i64],
                |r| r.get(0),
            )
            .optional()?;
        let Some(courier) = courier else {
            return Ok(None);
        };
        tx.execute(
            "INSERT INTO devices (device_id, courier_id, name, token_hash, public_key, enrolled_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![device.to_string(), courier, name, token_hash, public_key, now_ms as i64],
        )?;
        tx.commit()?;
        Ok(Some(id(courier)?))
    }

    pub(crate) fn device_by_token_impl(&self, token_hash: &str) -> SqlResult<Option<DeviceAuth>> {
        let row = self
            .read()
            .query_row(
                "SELECT device_id, courier_id FROM devices WHERE token_hash = ?1",
                [token_hash],
                |r| {
                    Ok(DeviceAuth {
                        device_id: id(r.get(0)?)?,
                        courier_id: id(r.get(1)?)?,
                    })
                },
            )
            .optional()?;
        Ok(row)
    }

    pub(crate) fn create_dispatcher_impl(&self, name: &str, token_hash: &str) -> SqlResult<()> {
        self.write().execute(
            "INSERT INTO dispatchers (token_hash, name) VALUES (?1, ?2)",
            params![token_hash, name],
        )?;
        Ok(())
    }

    pub(crate) fn dispatcher_by_token_impl(
        &self,
        token_hash: &str,
    ) -> SqlResult<Option<DispatcherAuth>> {
        let row = self
            .read()
            .query_row(
                "SELECT name FROM dispatchers WHERE token_hash = ?1",
                [token_hash],
                |r| Ok(DispatcherAuth { name: r.get(0)? }),
            )
            .optional()?;
        Ok(row)
    }
}
