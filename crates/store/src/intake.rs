//! Order intake, written once above every backend: per order, is it new, the same, a new
//! version, or a change after dispatch? Idempotent on (shipper, external id) and the content's
//! fingerprint. A backend only provides the transaction ([`OrderUnit`]): it locks and reads the
//! batch's orders and writes what it is told.

use crate::error::{StoreError, StoreResult};
use crate::model::ShipperId;
use crate::store::Store;
use doorstep_shared::ProblemCode;
use doorstep_shared::order::{Order, OrderResult, OrderStatus};
use std::collections::{BTreeSet, HashMap};

/// What the store holds of an order's current version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredOrder {
    pub version: u32,
    pub fingerprint: String,
    /// The order is on a published route (its content is then the street's to change).
    pub dispatched: bool,
}

/// An order version to store.
#[derive(Clone, Debug)]
pub struct OrderVersion<'a> {
    pub order: &'a Order,
    pub fingerprint: &'a str,
    pub version: u32,
    pub received_at_ms: u64,
}

/// One intake request's transaction; committed only if the work returns `Ok`.
pub trait OrderUnit {
    /// Locks these external ids of the unit's shipper (sorted, deduplicated) for the rest of
    /// the transaction and returns what the store holds of them.
    fn lock_orders(&mut self, external_ids: &[&str]) -> StoreResult<HashMap<String, StoredOrder>>;
    /// Stores an order version as the order's current one (version 1 creates it).
    fn save_version(&mut self, version: &OrderVersion<'_>) -> StoreResult<()>;
}

pub type OrderWork<'a> = dyn FnMut(&mut dyn OrderUnit) -> StoreResult<()> + 'a;

/// The decision for one valid order, given what the store holds of it.
pub fn decide(stored: Option<&StoredOrder>, fingerprint: &str) -> (OrderStatus, u32) {
    match stored {
        None => (OrderStatus::Created, 1),
        Some(s) if s.fingerprint == fingerprint => (OrderStatus::Duplicate, s.version),
        Some(s) if s.dispatched => (OrderStatus::Conflict, s.version),
        Some(s) => (OrderStatus::Updated, s.version.saturating_add(1)),
    }
}

/// Records a batch of `shipper`'s orders; one result per order, in the batch's order.
/// Invalid orders are rejected with a code and never stop the others; an external id sent
/// twice in one batch with different content is rejected the second time.
pub fn record_orders<S: Store + ?Sized>(
    store: &S,
    shipper: ShipperId,
    orders: &[Order],
    received_at_ms: u64,
) -> StoreResult<Vec<OrderResult>> {
    let checked: Vec<Result<String, String>> = orders
        .iter()
        .map(|o| {
            o.validate()
                .map(|()| o.fingerprint())
                .map_err(|e| e.to_string())
        })
        .collect();
    let ids: BTreeSet<&str> = orders
        .iter()
        .zip(&checked)
        .filter(|(_, c)| c.is_ok())
        .map(|(o, _)| o.external_id.as_str())
        .collect();
    let ids: Vec<&str> = ids.into_iter().collect();
    let mut results = None;
    store.order_unit(shipper, &mut |unit| {
        let mut stored = unit.lock_orders(&ids)?;
        let mut out = Vec::with_capacity(orders.len());
        // Content each external id took in this batch.
        let mut in_batch: HashMap<&str, &str> = HashMap::new();
        for (order, check) in orders.iter().zip(&checked) {
            let id = order.external_id.as_str();
            let fingerprint = match check {
                Ok(f) => f.as_str(),
                Err(why) => {
                    out.push(rejected(id, ProblemCode::InvalidOrder, why.clone()));
                    continue;
                }
            };
            if let Some(earlier) = in_batch.get(id)
                && *earlier != fingerprint
            {
                out.push(rejected(
                    id,
                    ProblemCode::InvalidOrder,
                    "external_id: appears twice in this batch with different content".to_owned(),
                ));
                continue;
            }
            let (status, version) = decide(stored.get(id), fingerprint);
            if matches!(status, OrderStatus::Created | OrderStatus::Updated) {
                unit.save_version(&OrderVersion {
                    order,
                    fingerprint,
                    version,
                    received_at_ms,
                })?;
                stored.insert(
                    id.to_owned(),
                    StoredOrder {
                        version,
                        fingerprint: fingerprint.to_owned(),
                        dispatched: false,
                    },
                );
            }
            in_batch.insert(id, fingerprint);
            out.push(OrderResult {
                external_id: id.to_owned(),
                status,
                version: Some(version),
                code: None,
                detail: None,
            });
        }
        results = Some(out);
        Ok(())
    })?;
    results.ok_or_else(|| StoreError::Fatal("order unit committed without running".to_owned()))
}

fn rejected(id: &str, code: ProblemCode, detail: String) -> OrderResult {
    OrderResult {
        external_id: id.to_owned(),
        status: OrderStatus::Rejected,
        version: None,
        code: Some(code),
        detail: Some(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(version: u32, fingerprint: &str, dispatched: bool) -> StoredOrder {
        StoredOrder {
            version,
            fingerprint: fingerprint.to_owned(),
            dispatched,
        }
    }

    #[test]
    fn new_same_changed_and_changed_after_dispatch() {
        assert_eq!(decide(None, "a"), (OrderStatus::Created, 1));
        assert_eq!(
            decide(Some(&stored(3, "a", false)), "a"),
            (OrderStatus::Duplicate, 3)
        );
        assert_eq!(
            decide(Some(&stored(3, "a", true)), "a"),
            (OrderStatus::Duplicate, 3),
            "the same content is a duplicate even after dispatch"
        );
        assert_eq!(
            decide(Some(&stored(3, "a", false)), "b"),
            (OrderStatus::Updated, 4)
        );
        assert_eq!(
            decide(Some(&stored(3, "a", true)), "b"),
            (OrderStatus::Conflict, 3)
        );
    }
}
