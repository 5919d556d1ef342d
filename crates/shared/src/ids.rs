//! Identifier newtypes. Entity ids are UUIDv7 (time-ordered); the caller supplies the timestamp
//! and random bits so that this crate stays free of clocks and randomness.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A UUIDv7 from a Unix time in milliseconds and 10 random bytes supplied by the caller.
            pub fn from_parts(unix_ms: u64, random: [u8; 10]) -> Self {
                Self(uuid_v7(unix_ms, random))
            }
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// One event, as created on a device or by a dispatcher command. Transport identity only:
    /// idempotency never keys on it.
    EventId
);
uuid_id!(
    /// One enrolled handheld.
    DeviceId
);
uuid_id!(
    /// One driver.
    CourierId
);
uuid_id!(
    /// One day's route of one courier.
    RouteId
);
uuid_id!(
    /// One delivery stop (an address visit with one or more parcels).
    StopId
);
uuid_id!(
    /// One case in the escalation queue.
    EscalationId
);
uuid_id!(
    /// One depot.
    DepotId
);
uuid_id!(
    /// One shipper: a company whose orders the courier company delivers; its integration
    /// tokens reach only its own orders.
    ShipperId
);

/// Builds a version-7 UUID from its parts (RFC 9562 §5.7).
pub fn uuid_v7(unix_ms: u64, random: [u8; 10]) -> Uuid {
    let ms = unix_ms & 0xFFFF_FFFF_FFFF;
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6..].copy_from_slice(&random);
    b[6] = (b[6] & 0x0F) | 0x70;
    b[8] = (b[8] & 0x3F) | 0x80;
    Uuid::from_bytes(b)
}

/// A parcel's barcode as printed on its label: 4–64 characters of `A-Z a-z 0-9 - _ .`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ParcelBarcode(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a parcel barcode has 4 to 64 characters of A-Z, a-z, 0-9, '-', '_' or '.'; got {0:?}")]
pub struct InvalidBarcode(pub String);

impl ParcelBarcode {
    pub fn parse(s: &str) -> Result<Self, InvalidBarcode> {
        let ok = (4..=64).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidBarcode(s.to_owned()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ParcelBarcode {
    type Error = InvalidBarcode;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ParcelBarcode> for String {
    fn from(b: ParcelBarcode) -> Self {
        b.0
    }
}

impl fmt::Display for ParcelBarcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A lower-case hex SHA-256 digest of a blob (a photo, a thumbnail, a signature image).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BlobDigest(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a blob digest is 64 lower-case hex characters (SHA-256); got {0:?}")]
pub struct InvalidDigest(pub String);

impl BlobDigest {
    pub fn parse(s: &str) -> Result<Self, InvalidDigest> {
        let ok = s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidDigest(s.to_owned()))
        }
    }
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest;
        Self(hex::encode(sha2::Sha256::digest(bytes)))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BlobDigest {
    type Error = InvalidDigest;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<BlobDigest> for String {
    fn from(d: BlobDigest) -> Self {
        d.0
    }
}

impl fmt::Display for BlobDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v7_has_version_variant_and_time_prefix() {
        let id = EventId::from_parts(0x0190_1234_5678, [0xFF; 10]);
        assert_eq!(id.0.get_version_num(), 7);
        assert_eq!(id.0.get_variant(), uuid::Variant::RFC4122);
        assert!(id.to_string().starts_with("01901234-5678-7"));
    }

    #[test]
    fn uuid_v7_orders_by_time() {
        let a = EventId::from_parts(1_000, [0xFF; 10]);
        let b = EventId::from_parts(1_001, [0x00; 10]);
        assert!(a < b);
    }

    #[test]
    fn barcode_rejects_bad_input_with_a_readable_message() {
        assert!(ParcelBarcode::parse("PKG-0001").is_ok());
        let err = ParcelBarcode::parse("a b").unwrap_err();
        assert!(err.to_string().contains("4 to 64 characters"));
        assert!(serde_json::from_str::<ParcelBarcode>("\"x\"").is_err());
    }

    #[test]
    fn digest_of_known_bytes() {
        assert_eq!(
            BlobDigest::of(b"abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(BlobDigest::parse("ABC").is_err());
    }
}
