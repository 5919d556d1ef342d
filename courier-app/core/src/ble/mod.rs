//! Bluetooth beacons for proof of presence: parsers for real iBeacon and Eddystone-UID bytes
//! ([`parse`]), debouncing and RSSI smoothing ([`smooth`]), presence scoring per attempt
//! ([`presence`]), and scan sources behind [`ScanSource`]: a seeded simulated source
//! ([`sim`]) for the simulator and field-test mode. A real radio adapter lives behind the
//! same trait; without a Bluetooth adapter it fails with [`BleError::NoAdapter`] and the app
//! carries on without presence evidence.

#[cfg(target_os = "linux")]
pub mod btle;
pub mod parse;
pub mod presence;
pub mod sim;
pub mod smooth;

/// One advertisement as a scanner reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advertisement {
    pub at_ms: u64,
    pub rssi_dbm: i16,
    /// Manufacturer data by company id (bytes after the company id).
    pub manufacturer_data: Vec<(u16, Vec<u8>)>,
    /// Service data by 16-bit service UUID (bytes after the UUID).
    pub service_data: Vec<(u16, Vec<u8>)>,
}

impl Advertisement {
    /// The beacon frames this advertisement carries.
    pub fn frames(&self) -> Vec<parse::BeaconFrame> {
        let m = self
            .manufacturer_data
            .iter()
            .filter_map(|(c, d)| parse::ibeacon(*c, d).ok());
        let s = self
            .service_data
            .iter()
            .filter_map(|(u, d)| parse::eddystone_uid(*u, d).ok());
        m.chain(s).collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BleError {
    #[error("no Bluetooth adapter on this device; beacon presence is not recorded")]
    NoAdapter,
    #[error("Bluetooth is unavailable: {0}")]
    Unavailable(String),
}

/// Where advertisements come from (a radio, a simulation, a recording).
#[async_trait::async_trait]
pub trait ScanSource: Send {
    /// The next advertisement, `None` when the source is exhausted.
    async fn next(&mut self) -> Result<Option<Advertisement>, BleError>;
}
