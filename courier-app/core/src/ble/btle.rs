//! The real radio on Linux: BlueZ through `btleplug`, behind [`ScanSource`]. Without an
//! adapter (or without BlueZ at all) [`BtleScanner::start`] fails with
//! [`BleError::NoAdapter`], which the app shows plainly before carrying on without presence
//! evidence.

use super::{Advertisement, BleError, ScanSource};
use crate::clock::Clock;
use btleplug::api::{Central, CentralEvent, Manager as _, Peripheral as _, ScanFilter};
use btleplug::platform::{Adapter, Manager, PeripheralId};
use futures::StreamExt;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

type Events = Pin<Box<dyn futures::Stream<Item = CentralEvent> + Send>>;

pub struct BtleScanner {
    adapter: Adapter,
    events: Events,
    rssi: HashMap<PeripheralId, i16>,
    clock: Arc<dyn Clock>,
}

/// The 16-bit form of a Bluetooth base UUID (`0000xxxx-0000-1000-8000-00805f9b34fb`).
fn uuid16(u: &uuid::Uuid) -> Option<u16> {
    let b = u.as_bytes();
    const BASE_TAIL: [u8; 12] = [
        0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0x80, 0x5f, 0x9b, 0x34, 0xfb,
    ];
    (b[0] == 0 && b[1] == 0 && b[4..] == BASE_TAIL).then(|| u16::from_be_bytes([b[2], b[3]]))
}

impl BtleScanner {
    /// Opens the first adapter and starts a passive scan.
    pub async fn start(clock: Arc<dyn Clock>) -> Result<Self, BleError> {
        let manager = Manager::new().await.map_err(|e| {
            tracing::warn!(error = %e, "no Bluetooth stack reachable");
            BleError::NoAdapter
        })?;
        let adapters = manager.adapters().await.map_err(|e| {
            tracing::warn!(error = %e, "cannot list Bluetooth adapters");
            BleError::NoAdapter
        })?;
        let adapter = adapters.into_iter().next().ok_or(BleError::NoAdapter)?;
        let events = adapter
            .events()
            .await
            .map_err(|e| BleError::Unavailable(e.to_string()))?;
        adapter
            .start_scan(ScanFilter::default())
            .await
            .map_err(|e| BleError::Unavailable(e.to_string()))?;
        Ok(Self {
            adapter,
            events,
            rssi: HashMap::new(),
            clock,
        })
    }

    async fn rssi_of(&mut self, id: &PeripheralId) -> i16 {
        if let Some(r) = self.rssi.get(id) {
            return *r;
        }
        let props = match self.adapter.peripheral(id).await {
            Ok(p) => p.properties().await.ok().flatten(),
            Err(_) => None,
        };
        props.and_then(|p| p.rssi).unwrap_or(i16::MIN)
    }
}

#[async_trait::async_trait]
impl ScanSource for BtleScanner {
    async fn next(&mut self) -> Result<Option<Advertisement>, BleError> {
        while let Some(event) = self.events.next().await {
            let (id, manufacturer_data, service_data) = match event {
                CentralEvent::RssiUpdate { id, rssi } => {
                    self.rssi.insert(id, rssi);
                    continue;
                }
                CentralEvent::ManufacturerDataAdvertisement {
                    id,
                    manufacturer_data,
                } => (id, manufacturer_data.into_iter().collect(), Vec::new()),
                CentralEvent::ServiceDataAdvertisement { id, service_data } => (
                    id,
                    Vec::new(),
                    service_data
                        .into_iter()
                        .filter_map(|(u, d)| Some((uuid16(&u)?, d)))
                        .collect(),
                ),
                _ => continue,
            };
            let rssi_dbm = self.rssi_of(&id).await;
            return Ok(Some(Advertisement {
                at_ms: self.clock.now_ms(),
                rssi_dbm,
                manufacturer_data,
                service_data,
            }));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eddystone_service_uuid_maps_to_its_16_bit_form() {
        let u = uuid::Uuid::parse_str("0000feaa-0000-1000-8000-00805f9b34fb").expect("uuid");
        assert_eq!(uuid16(&u), Some(0xFEAA));
        assert_eq!(uuid16(&uuid::Uuid::nil()), None);
    }
}
