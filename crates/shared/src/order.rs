//! Orders: what a shipper asks the courier company to deliver, as its systems send them to
//! `POST /v1/orders` (an integration token, one shipper). The same external id with the same
//! content is a duplicate; with new content it is the order's next version.
//!
//! [`Order::validate`] is the one check every intake path applies (the API and the CSV
//! import), so a bad order is refused the same way whichever way it came.

use crate::ProblemCode;
use crate::event::{GeoPoint, TimeWindow};
use crate::ids::ParcelBarcode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Orders in one `POST /v1/orders` request, at most.
pub const MAX_ORDERS_PER_REQUEST: usize = 1_000;
/// Longest external id accepted, in bytes.
pub const MAX_EXTERNAL_ID_BYTES: usize = 100;

/// One parcel of an order.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderParcel {
    pub barcode: ParcelBarcode,
    #[serde(default)]
    pub weight_g: u32,
    #[serde(default)]
    pub volume_cm3: u32,
}

/// Who receives the order.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recipient {
    pub name: String,
    /// Kept verbatim (a leading zero or `+` stays).
    #[serde(default)]
    pub phone: Option<String>,
}

/// A shipper's delivery order.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The shipper's own id for the order, unique per shipper.
    pub external_id: String,
    /// The delivery day, `YYYY-MM-DD`.
    pub date: String,
    pub recipient: Recipient,
    pub address: String,
    pub location: GeoPoint,
    pub window: TimeWindow,
    /// Minutes at the door.
    #[serde(default)]
    pub service_minutes: u32,
    pub parcels: Vec<OrderParcel>,
    #[serde(default)]
    pub access_notes: Option<String>,
    /// Cash to collect on delivery, in the currency's minor unit.
    #[serde(default)]
    pub cash_due_minor: Option<u64>,
    /// Higher is more important; 0 is normal.
    #[serde(default)]
    pub priority: u8,
}

/// Why an order is refused: the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct OrderInvalid {
    pub field: &'static str,
    pub reason: String,
}

impl OrderInvalid {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

impl Order {
    /// Whether the order can be accepted; the first problem found otherwise.
    pub fn validate(&self) -> Result<(), OrderInvalid> {
        let id = self.external_id.trim();
        if id.is_empty() {
            return Err(OrderInvalid::new("external_id", "is empty"));
        }
        if self.external_id.len() > MAX_EXTERNAL_ID_BYTES {
            return Err(OrderInvalid::new(
                "external_id",
                format!("is longer than {MAX_EXTERNAL_ID_BYTES} bytes"),
            ));
        }
        if id != self.external_id {
            return Err(OrderInvalid::new(
                "external_id",
                "has leading or trailing spaces",
            ));
        }
        if !is_date(&self.date) {
            return Err(OrderInvalid::new(
                "date",
                "is not a date of the form YYYY-MM-DD",
            ));
        }
        if self.recipient.name.trim().is_empty() {
            return Err(OrderInvalid::new("recipient.name", "is empty"));
        }
        if self.address.trim().is_empty() {
            return Err(OrderInvalid::new("address", "is empty"));
        }
        let GeoPoint { lat, lon } = self.location;
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(OrderInvalid::new(
                "location.lat",
                format!("{lat} is not a latitude (-90 to 90)"),
            ));
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(OrderInvalid::new(
                "location.lon",
                format!("{lon} is not a longitude (-180 to 180)"),
            ));
        }
        if self.window.start_ms >= self.window.end_ms {
            return Err(OrderInvalid::new(
                "window",
                "is empty or inverted (start must be before end)",
            ));
        }
        if self.service_minutes > 24 * 60 {
            return Err(OrderInvalid::new("service_minutes", "is longer than a day"));
        }
        if self.parcels.is_empty() {
            return Err(OrderInvalid::new(
                "parcels",
                "an order needs at least one parcel",
            ));
        }
        let mut seen = BTreeSet::new();
        for p in &self.parcels {
            if !seen.insert(p.barcode.as_str()) {
                return Err(OrderInvalid::new(
                    "parcels",
                    format!("barcode {} appears twice", p.barcode),
                ));
            }
        }
        Ok(())
    }
}

impl Order {
    /// The fingerprint of the order's content: equal content, equal fingerprint.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(crate::intent::canonical_json(self)))
    }
}

/// `YYYY-MM-DD` with a month 1–12 and a day 1–31.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    matches!(
        (digits(0..4), digits(5..7), digits(8..10)),
        (Some(_), Some(1..=12), Some(1..=31))
    )
}

/// `POST /v1/orders`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderBatch {
    pub orders: Vec<Order>,
}

/// What became of one order of a batch.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// A new order (version 1).
    Created,
    /// New content for a known order, before it was dispatched: its next version.
    Updated,
    /// The same content as the order's current version: nothing changed.
    Duplicate,
    /// New content for an order already out for delivery: not applied.
    Conflict,
    /// Not accepted; `code` and `detail` say why.
    Rejected,
}

/// The answer for one order, in the batch's order.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderResult {
    pub external_id: String,
    pub status: OrderStatus,
    /// The order's current version (absent when rejected).
    pub version: Option<u32>,
    pub code: Option<ProblemCode>,
    pub detail: Option<String>,
}

/// The answer to `POST /v1/orders`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderBatchResponse {
    pub results: Vec<OrderResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn order(id: &str) -> Order {
        Order {
            external_id: id.to_owned(),
            date: "2026-12-03".to_owned(),
            recipient: Recipient {
                name: "Ada Novak".to_owned(),
                phone: Some("0301234567".to_owned()),
            },
            address: "Teststraße 1, Berlin".to_owned(),
            location: GeoPoint {
                lat: 52.52,
                lon: 13.405,
            },
            window: TimeWindow {
                start_ms: 1_000,
                end_ms: 2_000,
            },
            service_minutes: 3,
            parcels: vec![OrderParcel {
                barcode: ParcelBarcode::parse("PKG-0001").unwrap_or_else(|_| unreachable!()),
                weight_g: 1_200,
                volume_cm3: 4_000,
            }],
            access_notes: None,
            cash_due_minor: None,
            priority: 0,
        }
    }

    #[test]
    fn a_complete_order_is_valid() {
        assert_eq!(order("A-1").validate(), Ok(()));
    }

    #[test]
    fn each_bad_field_is_named() {
        type Spoil = Box<dyn Fn(&mut Order)>;
        let cases: Vec<(&str, Spoil)> = vec![
            ("external_id", Box::new(|o| o.external_id = " ".into())),
            ("external_id", Box::new(|o| o.external_id = "x".repeat(101))),
            ("external_id", Box::new(|o| o.external_id = " A-1".into())),
            ("date", Box::new(|o| o.date = "03.12.2026".into())),
            ("date", Box::new(|o| o.date = "2026-13-01".into())),
            ("recipient.name", Box::new(|o| o.recipient.name = "".into())),
            ("address", Box::new(|o| o.address = " ".into())),
            ("location.lat", Box::new(|o| o.location.lat = 91.0)),
            ("location.lat", Box::new(|o| o.location.lat = f64::NAN)),
            ("location.lon", Box::new(|o| o.location.lon = -180.5)),
            ("window", Box::new(|o| o.window.end_ms = o.window.start_ms)),
            ("window", Box::new(|o| o.window.end_ms = 10)),
            ("service_minutes", Box::new(|o| o.service_minutes = 1_441)),
            ("parcels", Box::new(|o| o.parcels.clear())),
            (
                "parcels",
                Box::new(|o| {
                    let p = o.parcels[0].clone();
                    o.parcels.push(p);
                }),
            ),
        ];
        for (field, spoil) in cases {
            let mut o = order("A-1");
            spoil(&mut o);
            let err = o.validate().expect_err(field);
            assert_eq!(err.field, field, "{err}");
        }
    }

    #[test]
    fn dates_are_checked_by_shape_and_range() {
        assert!(is_date("2026-02-28"));
        assert!(!is_date("2026-2-28"));
        assert!(!is_date("2026-00-10"));
        assert!(!is_date("2026-01-32"));
        assert!(!is_date("２０２６-01-01"));
    }
}
