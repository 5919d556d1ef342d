//! Shippers, integration tokens and the order unit of work on SQLite: one IMMEDIATE
//! transaction per intake request (the single writer serialises them, so nothing more is
//! locked). It reads and writes what `intake::record_orders` asks.

use super::{SqlResult, SqliteStore, to_json};
use crate::intake::{OrderUnit, OrderVersion, OrderWork, StoredOrder};
use crate::store::{IntegrationAuth, ShipperId, StoreResult};
use doorstep_shared::order::Order;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;

impl SqliteStore {
    pub(crate) fn create_integration_impl(
        &self,
        id: ShipperId,
        name: &str,
        token_hash: &str,
    ) -> SqlResult<ShipperId> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO shippers (shipper_id, name) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
            params![id.to_string(), name],
        )?;
        let shipper: String = tx.query_row(
            "SELECT shipper_id FROM shippers WHERE name = ?1",
            [name],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO integration_tokens (token_hash, shipper_id) VALUES (?1, ?2)",
            params![token_hash, shipper],
        )?;
        tx.commit()?;
        Ok(super::id(shipper)?)
    }

    pub(crate) fn integration_by_token_impl(
        &self,
        token_hash: &str,
    ) -> SqlResult<Option<IntegrationAuth>> {
        let row: Option<(String, String)> = self
            .read()
            .prepare_cached(
                "SELECT s.shipper_id, s.name FROM integration_tokens t
                 JOIN shippers s ON s.shipper_id = t.shipper_id WHERE t.token_hash = ?1",
            )?
            .query_row([token_hash], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(id, name)| {
            Ok(IntegrationAuth {
                shipper: super::id(id)?,
                name,
            })
        })
        .transpose()
    }

    pub(crate) fn order_unit_impl(
        &self,
        shipper: ShipperId,
        work: &mut OrderWork<'_>,
    ) -> SqlResult<()> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        work(&mut SqliteOrders {
            conn: &tx,
            shipper: shipper.to_string(),
        })?;
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn order_impl(
        &self,
        shipper: ShipperId,
        external_id: &str,
    ) -> SqlResult<Option<(u32, Order)>> {
        let row: Option<(u32, String)> = self
            .read()
            .prepare_cached(
                "SELECT version, order_json FROM orders WHERE shipper_id = ?1 AND external_id = ?2",
            )?
            .query_row(params![shipper.to_string(), external_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        row.map(|(v, json)| Ok((v, super::json(&json)?)))
            .transpose()
    }
}

struct SqliteOrders<'c> {
    conn: &'c Connection,
    shipper: String,
}

impl OrderUnit for SqliteOrders<'_> {
    fn lock_orders(&mut self, external_ids: &[&str]) -> StoreResult<HashMap<String, StoredOrder>> {
        super::db(|| {
            let mut q = self.conn.prepare_cached(
                "SELECT version, fingerprint, dispatched FROM orders
                 WHERE shipper_id = ?1 AND external_id = ?2",
            )?;
            let mut out = HashMap::new();
            for id in external_ids {
                let row = q
                    .query_row(params![self.shipper, id], |r| {
                        Ok(StoredOrder {
                            version: r.get(0)?,
                            fingerprint: r.get(1)?,
                            dispatched: r.get(2)?,
                        })
                    })
                    .optional()?;
                if let Some(row) = row {
                    out.insert((*id).to_owned(), row);
                }
            }
            Ok(out)
        })
    }

    fn save_version(&mut self, v: &OrderVersion<'_>) -> StoreResult<()> {
        super::db(|| {
            let json = to_json(v.order)?;
            let at = super::push::seq_param(v.received_at_ms);
            self.conn
                .prepare_cached(
                    "INSERT INTO order_versions (shipper_id, external_id, version, fingerprint,
                         order_json, received_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    self.shipper,
                    v.order.external_id,
                    v.version,
                    v.fingerprint,
                    json,
                    at
                ])?;
            self.conn
                .prepare_cached(
                    "INSERT INTO orders (shipper_id, external_id, version, fingerprint, day,
                         order_json, received_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(shipper_id, external_id) DO UPDATE SET version = excluded.version,
                         fingerprint = excluded.fingerprint, day = excluded.day,
                         order_json = excluded.order_json, received_at_ms = excluded.received_at_ms",
                )?
                .execute(params![
                    self.shipper,
                    v.order.external_id,
                    v.version,
                    v.fingerprint,
                    v.order.date,
                    json,
                    at
                ])?;
            Ok(())
        })
    }
}
