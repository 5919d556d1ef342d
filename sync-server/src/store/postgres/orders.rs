//! Shippers, integration tokens and the order unit of work on PostgreSQL: one transaction on
//! one pooled connection; a batch's orders are locked with transaction-scoped advisory locks
//! on (shipper, external id) in hash order, so two replicas taking the same order at once are
//! serialised (the second reads what the first stored).

use super::{PgError, PgResult, PgStore, id, json};
use crate::intake::{OrderUnit, OrderVersion, OrderWork, StoredOrder};
use crate::store::{IntegrationAuth, ShipperId, StoreResult};
use deadpool_postgres::Object;
use doorstep_shared::order::Order;
use std::collections::HashMap;

impl PgStore {
    pub(super) fn create_integration_impl(
        &self,
        shipper: ShipperId,
        name: &str,
        token_hash: &str,
    ) -> StoreResult<ShipperId> {
        self.run(async |c| {
            let tx = c.transaction().await?;
            tx.execute(
                "INSERT INTO shippers (shipper_id, name) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
                &[&shipper.to_string(), &name],
            )
            .await?;
            let found: String = tx
                .query_one("SELECT shipper_id FROM shippers WHERE name = $1", &[&name])
                .await?
                .try_get(0)?;
            tx.execute(
                "INSERT INTO integration_tokens (token_hash, shipper_id) VALUES ($1, $2)",
                &[&token_hash, &found],
            )
            .await?;
            tx.commit().await?;
            id(&found)
        })
    }

    pub(super) fn integration_by_token_impl(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<IntegrationAuth>> {
        self.run(async |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT s.shipper_id, s.name FROM integration_tokens t
                     JOIN shippers s ON s.shipper_id = t.shipper_id WHERE t.token_hash = $1",
                )
                .await?;
            let Some(r) = c.query_opt(&stmt, &[&token_hash]).await? else {
                return Ok(None);
            };
            Ok(Some(IntegrationAuth {
                shipper: id(r.try_get::<_, &str>(0)?)?,
                name: r.try_get(1)?,
            }))
        })
    }

    pub(super) fn order_unit_impl(
        &self,
        shipper: ShipperId,
        work: &mut OrderWork<'_>,
    ) -> StoreResult<()> {
        self.transaction(
            |client| PgOrders {
                store: self,
                client,
                shipper: shipper.to_string(),
            },
            |unit| work(unit),
            |unit| unit.client,
        )
    }

    pub(super) fn order_impl(
        &self,
        shipper: ShipperId,
        external_id: &str,
    ) -> StoreResult<Option<(u32, Order)>> {
        self.run(async |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT version, order_json FROM orders
                     WHERE shipper_id = $1 AND external_id = $2",
                )
                .await?;
            let Some(r) = c
                .query_opt(&stmt, &[&shipper.to_string(), &external_id])
                .await?
            else {
                return Ok(None);
            };
            let version = u32::try_from(r.try_get::<_, i64>(0)?)
                .map_err(|_| PgError::Data("order version out of range".into()))?;
            Ok(Some((version, json(r.try_get::<_, &str>(1)?)?)))
        })
    }
}

struct PgOrders<'s> {
    store: &'s PgStore,
    client: Object,
    shipper: String,
}

impl PgOrders<'_> {
    fn on<T>(&self, f: impl AsyncFnOnce(&Object) -> PgResult<T>) -> StoreResult<T> {
        self.store.block_on(f(&self.client))
    }
}

impl OrderUnit for PgOrders<'_> {
    fn lock_orders(&mut self, external_ids: &[&str]) -> StoreResult<HashMap<String, StoredOrder>> {
        if external_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let shipper = self.shipper.clone();
        let keys: Vec<String> = external_ids
            .iter()
            .map(|e| format!("order:{shipper}:{e}"))
            .collect();
        self.on(async |c| {
            let lock = c.prepare_cached(super::LOCK_KEYS).await?;
            let read = c
                .prepare_cached(
                    "SELECT external_id, version, fingerprint, dispatched FROM orders
                     WHERE shipper_id = $1 AND external_id = ANY($2)",
                )
                .await?;
            c.execute(&lock, &[&keys]).await?;
            let mut out = HashMap::new();
            for r in c.query(&read, &[&shipper, &external_ids]).await? {
                out.insert(
                    r.try_get(0)?,
                    StoredOrder {
                        version: u32::try_from(r.try_get::<_, i64>(1)?)
                            .map_err(|_| PgError::Data("order version out of range".into()))?,
                        fingerprint: r.try_get(2)?,
                        dispatched: r.try_get(3)?,
                    },
                );
            }
            Ok(out)
        })
    }

    fn save_version(&mut self, v: &OrderVersion<'_>) -> StoreResult<()> {
        let shipper = self.shipper.clone();
        let order_json =
            serde_json::to_string(v.order).map_err(|e| PgError::Data(e.to_string()))?;
        let received = i64::try_from(v.received_at_ms).unwrap_or(i64::MAX);
        let version = i64::from(v.version);
        self.on(async |c| {
            c.execute(
                "INSERT INTO order_versions (shipper_id, external_id, version, fingerprint,
                     order_json, received_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &shipper,
                    &v.order.external_id,
                    &version,
                    &v.fingerprint,
                    &order_json,
                    &received,
                ],
            )
            .await?;
            c.execute(
                "INSERT INTO orders (shipper_id, external_id, version, fingerprint, day,
                     order_json, received_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (shipper_id, external_id) DO UPDATE SET version = excluded.version,
                     fingerprint = excluded.fingerprint, day = excluded.day,
                     order_json = excluded.order_json, received_at_ms = excluded.received_at_ms",
                &[
                    &shipper,
                    &v.order.external_id,
                    &version,
                    &v.fingerprint,
                    &v.order.date,
                    &order_json,
                    &received,
                ],
            )
            .await?;
            Ok(())
        })
    }
}
