//! Couriers, devices, enrollment codes and dispatcher tokens.

use super::{PgStore, id, signed};
use crate::store::{DeviceAuth, DispatcherAuth, StoreResult};
use doorstep_shared::{CourierId, DeviceId};

impl PgStore {
    pub(super) fn create_courier_impl(
        &self,
        courier: CourierId,
        name: &str,
        region: &str,
    ) -> StoreResult<()> {
        self.run(async |c| {
            c.execute(
                "INSERT INTO couriers (courier_id, name, region) VALUES ($1, $2, $3)
                 ON CONFLICT (courier_id) DO NOTHING",
                &[&courier.to_string(), &name, &region],
            )
            .await?;
            Ok(())
        })
    }

    pub(super) fn create_enrollment_code_impl(
        &self,
        courier: CourierId,
        code_hash: &str,
        expires: u64,
    ) -> StoreResult<()> {
        self.run(async |c| {
            c.execute(
                "INSERT INTO enrollment_codes (code_hash, courier_id, expires_at_ms) VALUES ($1, $2, $3)",
                &[&code_hash, &courier.to_string(), &signed(expires)?],
            )
            .await?;
            Ok(())
        })
    }

    /// The code is consumed by a conditional UPDATE: of two devices racing for one code, the
    /// second waits for the first's row lock, then finds `used_by` set and gets `None`.
    pub(super) fn enroll_device_impl(
        &self,
        code_hash: &str,
        device: DeviceId,
        name: &str,
        token_hash: &str,
        public_key: Option<&str>,
        now_ms: u64,
    ) -> StoreResult<Option<CourierId>> {
        self.run(async |c| {
            let tx = c.transaction().await?;
            let row = tx
                .query_opt(
                    "UPDATE enrollment_codes SET used_by = $1
                     WHERE code_hash = $2 AND used_by IS NULL AND expires_at_ms > $3
                     RETURNING courier_id",
                    &[&device.to_string(), &code_hash, &signed(now_ms)?],
                )
                .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let courier: String = row.try_get(0)?;
            tx.execute(
                "INSERT INTO devices (device_id, courier_id, name, token_hash, public_key, enrolled_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&device.to_string(), &courier, &name, &token_hash, &public_key, &signed(now_ms)?],
            )
            .await?;
            tx.commit().await?;
            Ok(Some(id(&courier)?))
        })
    }

    pub(super) fn device_by_token_impl(&self, token_hash: &str) -> StoreResult<Option<DeviceAuth>> {
        self.run(async |c| {
            // Every device request authenticates: keep the statement prepared.
            let stmt = c
                .prepare_cached("SELECT device_id, courier_id FROM devices WHERE token_hash = $1")
                .await?;
            let row = c.query_opt(&stmt, &[&token_hash]).await?;
            row.map(|r| {
                Ok(DeviceAuth {
                    device_id: id(r.try_get(0)?)?,
                    courier_id: id(r.try_get(1)?)?,
                })
            })
            .transpose()
        })
    }

    pub(super) fn create_dispatcher_impl(&self, name: &str, token_hash: &str) -> StoreResult<()> {
        self.run(async |c| {
            c.execute(
                "INSERT INTO dispatchers (token_hash, name) VALUES ($1, $2)",
                &[&token_hash, &name],
            )
            .await?;
            Ok(())
        })
    }

    pub(super) fn dispatcher_by_token_impl(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<DispatcherAuth>> {
        self.run(async |c| {
            let stmt = c
                .prepare_cached("SELECT name FROM dispatchers WHERE token_hash = $1")
                .await?;
            let row = c.query_opt(&stmt, &[&token_hash]).await?;
            Ok(row
                .map(|r| r.try_get(0))
                .transpose()?
                .map(|name| DispatcherAuth { name }))
        })
    }
}
