//! Shared fixtures: a fake server, an enrolled device with a route, seeds.
#![allow(dead_code)]

use courier_core::testing::FakeServer;
use courier_core::{Clock, Device, SyncConfig, SyncEngine};
use doorstep_shared::event::{GeoPoint, RouteAssigned, StopPlan, TimeWindow};
use doorstep_shared::protocol::EnrollRequest;
use doorstep_shared::{CourierId, EventPayload, ParcelBarcode, RouteId, StopId};
use std::sync::Arc;

pub const T0: u64 = 1_780_000_000_000;

/// Seeds for randomised tests: `DOORSTEP_SEED=n` runs one, otherwise a fixed spread.
pub fn seeds() -> Vec<u64> {
    match std::env::var("DOORSTEP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(s) => vec![s],
        None => vec![1, 2, 3, 42, 1234],
    }
}

pub fn route(stops: usize) -> RouteAssigned {
    RouteAssigned {
        route_id: RouteId::from_parts(T0, [9; 10]),
        courier_id: CourierId::from_parts(T0, [8; 10]),
        day: "2026-06-01".into(),
        version: 1,
        depot: GeoPoint {
            lat: 52.5,
            lon: 13.4,
        },
        stops: (0..stops)
            .map(|i| StopPlan {
                stop_id: stop_id(i),
                sequence: i as u32 + 1,
                address: format!("Street {i}"),
                location: GeoPoint {
                    lat: 52.5 + i as f64 / 1000.0,
                    lon: 13.4,
                },
                window: TimeWindow {
                    start_ms: T0,
                    end_ms: T0 + 3_600_000,
                },
                parcels: vec![parcel(i, 0), parcel(i, 1)],
                customer_name: format!("Customer {i}"),
                access_notes: None,
                instructions: Some("ring twice".into()),
            })
            .collect(),
    }
}

pub fn stop_id(i: usize) -> StopId {
    let mut b = [0u8; 10];
    b[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    StopId::from_parts(T0, b)
}

pub fn parcel(stop: usize, n: usize) -> ParcelBarcode {
    ParcelBarcode::parse(&format!("PKG-{stop:04}-{n}")).expect("valid barcode")
}

/// A device enrolled at `server`, with `stops` stops pulled, ready to work.
pub async fn enrolled(
    dir: &tempfile::TempDir,
    server: &Arc<FakeServer>,
    clock: Arc<dyn Clock>,
    stops: usize,
) -> Device {
    let device = Device::open(dir.path().join("outbox.db"), clock, 7).expect("open outbox");
    let req = EnrollRequest {
        code: "ENROLL-1".into(),
        device_name: "test handheld".into(),
        public_key: None,
    };
    courier_core::sync::enroll(&device, server.as_ref(), &req)
        .await
        .expect("enroll");
    server.publish(EventPayload::RouteAssigned(route(stops)));
    let mut engine = SyncEngine::new(device.clone(), server.clone(), SyncConfig::default(), 1);
    let outcome = engine.sync_once().await;
    assert!(
        matches!(outcome, courier_core::RoundOutcome::Synced { .. }),
        "{outcome:?}"
    );
    device
}
