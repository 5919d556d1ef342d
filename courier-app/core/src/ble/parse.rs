//! Beacon advertisement parsers for the real byte layouts.
//!
//! - **iBeacon**: manufacturer-specific data (AD type `0xFF`) of Apple (company `0x004C`, sent
//!   little-endian on air as `4C 00`), then `02 15` (type, length 21), a 16-byte proximity
//!   UUID, major and minor (big-endian) and the calibrated RSSI at 1 m (signed).
//! - **Eddystone-UID**: service data (AD type `0x16`) for the 16-bit UUID `0xFEAA` (on air
//!   `AA FE`), frame type `0x00`, the calibrated tx power at 0 m (signed), a 10-byte namespace
//!   and a 6-byte instance (then two reserved bytes, often omitted).

pub const APPLE_COMPANY_ID: u16 = 0x004C;
pub const EDDYSTONE_UUID16: u16 = 0xFEAA;
/// Eddystone calibrates at 0 m; path loss from 0 m to 1 m is about 41 dB.
const EDDYSTONE_0M_TO_1M_DB: i16 = 41;

/// Which beacon this is (shared with the server, which parses the event's `beacon_id`).
pub use doorstep_shared::presence::BeaconId;

/// One parsed beacon frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BeaconFrame {
    pub id: BeaconId,
    /// Calibrated received power at 1 m, in dBm.
    pub tx_power_1m_dbm: i16,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not a beacon frame")]
    NotABeacon,
    #[error("{what} is {got} bytes, expected {expected}")]
    Length {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("AD structure at byte {0} overruns the advertisement")]
    Truncated(usize),
}

/// iBeacon from manufacturer data as scanners report it: `company` separately, `data` after
/// the company id.
pub fn ibeacon(company: u16, data: &[u8]) -> Result<BeaconFrame, ParseError> {
    if company != APPLE_COMPANY_ID || data.len() < 2 || data[0] != 0x02 || data[1] != 0x15 {
        return Err(ParseError::NotABeacon);
    }
    if data.len() != 23 {
        return Err(ParseError::Length {
            what: "iBeacon payload",
            got: data.len(),
            expected: 23,
        });
    }
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&data[2..18]);
    Ok(BeaconFrame {
        id: BeaconId::IBeacon {
            uuid,
            major: u16::from_be_bytes([data[18], data[19]]),
            minor: u16::from_be_bytes([data[20], data[21]]),
        },
        tx_power_1m_dbm: i16::from(data[22] as i8),
    })
}

/// Eddystone-UID from the service data of UUID `0xFEAA` (`data` after the UUID).
pub fn eddystone_uid(uuid16: u16, data: &[u8]) -> Result<BeaconFrame, ParseError> {
    if uuid16 != EDDYSTONE_UUID16 || data.first() != Some(&0x00) {
        return Err(ParseError::NotABeacon);
    }
    if data.len() != 18 && data.len() != 20 {
        return Err(ParseError::Length {
            what: "Eddystone-UID frame",
            got: data.len(),
            expected: 20,
        });
    }
    let mut namespace = [0u8; 10];
    namespace.copy_from_slice(&data[2..12]);
    let mut instance = [0u8; 6];
    instance.copy_from_slice(&data[12..18]);
    Ok(BeaconFrame {
        id: BeaconId::EddystoneUid {
            namespace,
            instance,
        },
        tx_power_1m_dbm: i16::from(data[1] as i8) - EDDYSTONE_0M_TO_1M_DB,
    })
}

/// Every beacon frame in a raw advertisement (a sequence of `len, type, data…` AD structures).
/// Non-beacon structures are skipped; a structure that overruns the buffer is an error.
pub fn advertisement(raw: &[u8]) -> Result<Vec<BeaconFrame>, ParseError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let len = raw[i] as usize;
        if len == 0 {
            break; // zero padding ends the significant part
        }
        let Some(ad) = raw.get(i + 1..i + 1 + len) else {
            return Err(ParseError::Truncated(i));
        };
        let (kind, body) = (ad[0], &ad[1..]);
        let frame = match kind {
            0xFF if body.len() >= 2 => ibeacon(u16::from_le_bytes([body[0], body[1]]), &body[2..]),
            0x16 if body.len() >= 2 => {
                eddystone_uid(u16::from_le_bytes([body[0], body[1]]), &body[2..])
            }
            _ => Err(ParseError::NotABeacon),
        };
        match frame {
            Ok(f) => out.push(f),
            Err(ParseError::NotABeacon) => {}
            Err(e) => return Err(e),
        }
        i += 1 + len;
    }
    Ok(out)
}

/// Distance in metres from the log-distance path-loss model (shared with the server).
pub use doorstep_shared::presence::distance_m;
