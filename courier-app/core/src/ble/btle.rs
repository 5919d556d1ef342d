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

    /// The advertisement data BlueZ holds for a device it reports as discovered: found in
    /// this scan (InterfacesAdded) or already known (GetManagedObjects). The properties are
    /// read now, so they may be newer than the packet that found the device; btleplug's
    /// `DeviceDiscovered` carries only the id. Caches the RSSI. `None` without an RSSI: BlueZ
    /// remembers the device but has not heard it in this scan, so its data is no sighting.
    async fn discovered(&mut self, id: &PeripheralId) -> Option<Reported> {
        let read = async { self.adapter.peripheral(id).await?.properties().await };
        let props = match read.await {
            Ok(props) => props?,
            Err(e) => {
                tracing::debug!(error = %e, ?id, "cannot read a discovered device");
                return None;
            }
        };
        self.rssi.insert(id.clone(), props.rssi?);
        Some((
            props.manufacturer_data.into_iter().collect(),
            service_data16(props.service_data),
        ))
    }
}

/// Manufacturer data by company id and service data by 16-bit UUID.
type Reported = (Vec<(u16, Vec<u8>)>, Vec<(u16, Vec<u8>)>);

fn service_data16(data: HashMap<uuid::Uuid, Vec<u8>>) -> Vec<(u16, Vec<u8>)> {
    data.into_iter()
        .filter_map(|(u, d)| Some((uuid16(&u)?, d)))
        .collect()
}

#[async_trait::async_trait]
impl ScanSource for BtleScanner {
    async fn next(&mut self) -> Result<Option<Advertisement>, BleError> {
        while let Some(event) = self.events.next().await {
            // btleplug 0.13 on BlueZ (src/bluez/adapter.rs) emits `DeviceDiscovered` for each
            // InterfacesAdded and each device known when the stream opens, and for a
            // PropertiesChanged one event per changed property, in this order: `RssiUpdate`,
            // `ManufacturerDataAdvertisement`, `ServiceDataAdvertisement`. It never emits
            // `DeviceUpdated`; other backends emit it next to those events for the same
            // packet, so it is ignored rather than read again and reported twice.
            let (id, (manufacturer_data, service_data)) = match event {
                CentralEvent::RssiUpdate { id, rssi } => {
                    self.rssi.insert(id, rssi);
                    continue;
                }
                CentralEvent::DeviceDiscovered(id) => match self.discovered(&id).await {
                    Some(reported) => (id, reported),
                    None => continue,
                },
                CentralEvent::ManufacturerDataAdvertisement {
                    id,
                    manufacturer_data,
                } => (id, (manufacturer_data.into_iter().collect(), Vec::new())),
                CentralEvent::ServiceDataAdvertisement { id, service_data } => {
                    (id, (Vec::new(), service_data16(service_data)))
                }
                _ => continue,
            };
            if manufacturer_data.is_empty() && service_data.is_empty() {
                continue;
            }
            // From the discovery or the latest `RssiUpdate` (BlueZ sends the RSSI only when it
            // changes, ahead of the data). Never fetched now: that could be newer than the packet.
            let Some(&rssi_dbm) = self.rssi.get(&id) else {
                tracing::debug!(?id, "advertisement without an RSSI skipped");
                continue;
            };
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
