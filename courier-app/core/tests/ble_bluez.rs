//! The unmodified btleplug stack (btleplug → bluez-async → libdbus) against a fake BlueZ on a
//! private D-Bus: real iBeacon and Eddystone-UID bytes come out of [`BtleScanner`], through
//! [`ScanSource`], the parsers and presence scoring; BlueZ without an adapter, or no BlueZ at
//! all, is a plain [`BleError::NoAdapter`].
//!
//! How: each test below starts `dbus-daemon` on a socket in a temp dir and (maybe) the fake
//! (`fake_bluez/fake_bluez.py`, python3-dbus), then re-runs this very binary, filtered to one
//! entry test in [`in_child`], with `DBUS_SYSTEM_BUS_ADDRESS` set for that child only. libdbus
//! reads the variable when btleplug opens the "system" bus; setting it in this process instead
//! would need `unsafe` (`std::env::set_var`) and would leak into every other test. The entry
//! tests return at once when run directly (no child marker in the environment); the parent
//! insists the child printed that it ran, so a filter that matched nothing fails.
#![cfg(target_os = "linux")]

mod fake_bluez;

use courier_core::ManualClock;
use courier_core::ble::parse::{BeaconFrame, BeaconId};
use courier_core::ble::presence::{BeaconRegistry, Site, score};
use courier_core::ble::smooth::{Debouncer, SmoothingConfig};
use courier_core::ble::{BleError, ScanSource, btle::BtleScanner};
use doorstep_shared::StopId;
use fake_bluez::{Bluez, FakeBluez, PrivateBus, entered_child, release, run_child};
use std::sync::Arc;
use std::time::Duration;

const IBEACON_MAC: &str = "DC:0D:30:00:00:07";
const EDDYSTONE_MAC: &str = "F4:5E:AB:00:00:42";
/// Both frames from one device, which BlueZ already knows (and hears) when the scan starts.
const KNOWN_MAC: &str = "C0:FF:EE:00:00:43";
/// Known to BlueZ but not heard lately: no RSSI, so its cached data is no sighting.
const STALE_MAC: &str = "C0:FF:EE:00:00:99";
const EDDYSTONE_UUID: &str = "0000feaa-0000-1000-8000-00805f9b34fb";
/// The fake's `wait_for` step between the discoveries and the advertisement steps.
const DISCOVERED: &str = "discovered";

/// iBeacon manufacturer data after Apple's company id: type 02 15, UUID
/// e2c56db5-dffb-48d2-b060-d0f5a71096e0, major 7, this minor, measured power 0xC3 (−61 dBm).
fn ibeacon_data(minor: u16) -> String {
    format!("0215e2c56db5dffb48d2b060d0f5a71096e00007{minor:04x}c3")
}

/// Eddystone-UID service data: frame 00, tx 0xEC (−20 dBm at 0 m), namespace
/// edd1ebeac04e5defa017, this instance, two reserved bytes.
fn eddystone_data(instance: &str) -> String {
    format!("00ecedd1ebeac04e5defa017{instance}0000")
}

/// A known dual-frame beacon at −75 dBm and a stale known one; once discovery starts, two
/// beacons found at −61 / −71 dBm. After the scanner has reported those discoveries, six
/// advertisement reports; one is an RSSI change alone, so the report after it must carry the
/// new RSSI from the scanner's cache.
fn scenario() -> serde_json::Value {
    serde_json::json!({
        "devices": [
            {"address": KNOWN_MAC, "known": true, "rssi": -75, "tx_power": 0,
             "manufacturer_data": {"76": ibeacon_data(43)}, "uuids": [EDDYSTONE_UUID],
             "service_data": {EDDYSTONE_UUID: eddystone_data("c0ffee000043")}},
            {"address": STALE_MAC, "known": true, "tx_power": 0,
             "manufacturer_data": {"76": ibeacon_data(99)}},
            {"address": IBEACON_MAC, "rssi": -61, "tx_power": 4,
             "manufacturer_data": {"76": ibeacon_data(42)}},
            {"address": EDDYSTONE_MAC, "rssi": -71, "tx_power": -8, "uuids": [EDDYSTONE_UUID],
             "service_data": {EDDYSTONE_UUID: eddystone_data("c0ffee000042")}},
        ],
        "steps": [
            {"wait_for": DISCOVERED},
            {"address": IBEACON_MAC, "rssi": -60, "data": true},
            {"address": EDDYSTONE_MAC, "rssi": -70, "data": true},
            {"address": IBEACON_MAC, "rssi": -52},
            {"address": IBEACON_MAC, "data": true},
            {"address": EDDYSTONE_MAC, "rssi": -66, "data": true},
            {"address": IBEACON_MAC, "rssi": -48, "data": true},
        ],
    })
}

fn ibeacon(minor: u16) -> BeaconFrame {
    let mut uuid = [0u8; 16];
    hex::decode_to_slice("e2c56db5dffb48d2b060d0f5a71096e0", &mut uuid).expect("uuid hex");
    BeaconFrame {
        id: BeaconId::IBeacon {
            uuid,
            major: 7,
            minor,
        },
        tx_power_1m_dbm: -61,
    }
}

fn eddystone(instance_hex: &str) -> BeaconFrame {
    let (mut namespace, mut instance) = ([0u8; 10], [0u8; 6]);
    hex::decode_to_slice("edd1ebeac04e5defa017", &mut namespace).expect("namespace hex");
    hex::decode_to_slice(instance_hex, &mut instance).expect("instance hex");
    BeaconFrame {
        id: BeaconId::EddystoneUid {
            namespace,
            instance,
        },
        tx_power_1m_dbm: -20 - 41,
    }
}

fn stop(n: u8) -> StopId {
    StopId::from_parts(1_780_000_000_000, [n; 10])
}

#[tokio::test]
async fn unmodified_btleplug_reads_beacons_from_the_fake_bluez() {
    let bus = PrivateBus::start().await;
    let fake = FakeBluez::start(&bus, Bluez::Adapter(&scenario())).await;
    run_child("in_child::scan_beacons", &bus, Some(&fake)).await;
}

#[tokio::test]
async fn bluez_without_an_adapter_is_no_adapter() {
    let bus = PrivateBus::start().await;
    let fake = FakeBluez::start(&bus, Bluez::NoAdapter).await;
    run_child("in_child::no_adapter", &bus, Some(&fake)).await;
}

#[tokio::test]
async fn a_bus_without_bluez_is_no_adapter() {
    let bus = PrivateBus::start().await;
    run_child("in_child::no_adapter", &bus, None).await;
}

/// Entry tests run by the tests above in a child process; run directly they do nothing.
mod in_child {
    use super::*;

    const WAIT: Duration = Duration::from_secs(20);

    #[tokio::test]
    async fn scan_beacons() {
        if !entered_child("in_child::scan_beacons") {
            return;
        }
        let clock = ManualClock::new(1_000);
        let scanner = tokio::time::timeout(WAIT, BtleScanner::start(Arc::new(clock.clone())))
            .await
            .expect("the scanner starts without hanging")
            .expect("the fake adapter is found and scanning starts");
        let mut source: Box<dyn ScanSource> = Box::new(scanner);
        let (ib, ed) = (ibeacon(42), eddystone("c0ffee000042"));
        let known = vec![ibeacon(43), eddystone("c0ffee000043")];
        // The first three come from the discoveries alone: the fake sends no PropertiesChanged
        // until they are in. The stale device's frame (minor 99) must not appear anywhere.
        let discoveries = 3;
        let expected = [
            ("the known beacon's discovery", known, -75),
            ("the iBeacon's discovery", vec![ib], -61),
            ("the Eddystone's discovery", vec![ed], -71),
            ("an iBeacon packet", vec![ib], -60),
            ("an Eddystone packet", vec![ed], -70),
            ("an iBeacon packet after an RSSI change", vec![ib], -52),
            ("an Eddystone packet", vec![ed], -66),
            ("an iBeacon packet", vec![ib], -48),
        ];

        let mut debouncer = Debouncer::new(SmoothingConfig::default());
        let mut sightings = Vec::new();
        for (i, (what, frames, rssi)) in expected.into_iter().enumerate() {
            if i == discoveries {
                release(DISCOVERED);
            }
            let adv = tokio::time::timeout(WAIT, source.next())
                .await
                .unwrap_or_else(|_| panic!("advertisement {i} ({what}) within {WAIT:?}"))
                .expect("scanning keeps working")
                .expect("the scan does not end");
            assert_eq!(adv.frames(), frames, "advertisement {i} ({what}): {adv:?}");
            assert_eq!(adv.rssi_dbm, rssi, "advertisement {i} ({what}): {adv:?}");
            assert_eq!(adv.at_ms, 1_000 + 1_000 * i as u64, "stamped by the clock");
            for frame in frames {
                if let Some(s) = debouncer.observe(frame.id, adv.rssi_dbm, adv.at_ms) {
                    sightings.push((s, frame.tx_power_1m_dbm));
                }
            }
            clock.advance(1_000);
        }

        let mut registry = BeaconRegistry::default();
        registry.register(ib.id, Site::Stop(stop(1)));
        registry.register(ed.id, Site::Stop(stop(2)));
        for (n, beacon) in [(1, ib), (2, ed)] {
            let at_door = score(stop(n), &registry, &sightings, None);
            assert!(
                at_door.is_present() && at_door.beacon_component > 0.0,
                "stop {n} ({}): {at_door:?} from {sightings:?}",
                beacon.id
            );
        }
        let elsewhere = score(stop(3), &registry, &sightings, None);
        assert_eq!(elsewhere.score, 0.0, "no beacon of stop 3 was heard");
    }

    #[tokio::test]
    async fn no_adapter() {
        if !entered_child("in_child::no_adapter") {
            return;
        }
        let started = tokio::time::timeout(WAIT, BtleScanner::start(Arc::new(ManualClock::new(0))))
            .await
            .expect("the scanner answers instead of hanging");
        match started {
            Err(e) => assert_eq!(e, BleError::NoAdapter),
            Ok(_) => panic!("a scanner started on a bus whose BlueZ has no adapter"),
        }
    }
}
