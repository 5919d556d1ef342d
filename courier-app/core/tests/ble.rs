//! BLE: parsers on real advertisement byte layouts, debouncing and smoothing, distance,
//! presence scoring and the no-real-attempt classification, and the simulated source.

use courier_core::ble::ScanSource;
use courier_core::ble::parse::{self, BeaconId, ParseError};
use courier_core::ble::presence::{
    AttemptClass, BeaconRegistry, FirstAttemptMetrics, GpsDwell, Site, classify, score,
};
use courier_core::ble::sim::{SimBeacon, SimulatedSource};
use courier_core::ble::smooth::{Debouncer, SmoothingConfig};
use doorstep_shared::event::{AttemptOutcome, DeliveryMethod};
use doorstep_shared::{FailureReason, StopId};

/// A complete iBeacon advertisement as captured off the air: flags, then manufacturer data
/// (len 0x1A, type 0xFF, company 0x004C little-endian, 0x02 0x15, UUID
/// f7826da6-4fa2-4e98-8024-bc5b71e0893e, major 1, minor 2, measured power −59 dBm).
const IBEACON_ADV: [u8; 30] = [
    0x02, 0x01, 0x06, 0x1A, 0xFF, 0x4C, 0x00, 0x02, 0x15, 0xF7, 0x82, 0x6D, 0xA6, 0x4F, 0xA2, 0x4E,
    0x98, 0x80, 0x24, 0xBC, 0x5B, 0x71, 0xE0, 0x89, 0x3E, 0x00, 0x01, 0x00, 0x02, 0xC5,
];

/// An Eddystone-UID advertisement: flags, complete list of 16-bit services (0xFEAA), service
/// data (len 0x17, type 0x16, UUID 0xFEAA LE, frame 0x00, tx −18 dBm at 0 m, namespace
/// edd1ebeac04e5defa017, instance 0bdb87539b67, two reserved bytes).
const EDDYSTONE_ADV: [u8; 31] = [
    0x02, 0x01, 0x06, 0x03, 0x03, 0xAA, 0xFE, 0x17, 0x16, 0xAA, 0xFE, 0x00, 0xEE, 0xED, 0xD1, 0xEB,
    0xEA, 0xC0, 0x4E, 0x5D, 0xEF, 0xA0, 0x17, 0x0B, 0xDB, 0x87, 0x53, 0x9B, 0x67, 0x00, 0x00,
];

#[test]
fn ibeacon_bytes_parse() {
    let frames = parse::advertisement(&IBEACON_ADV).expect("parse");
    assert_eq!(frames.len(), 1);
    let f = frames[0];
    assert_eq!(f.tx_power_1m_dbm, -59);
    assert_eq!(f.id.to_string(), "f7826da64fa24e988024bc5b71e0893e:1:2");
    // The scanner-reported form (company separately, bytes after it) gives the same frame.
    assert_eq!(parse::ibeacon(0x004C, &IBEACON_ADV[7..]), Ok(f));
    // Another company, another type, a short payload.
    assert_eq!(
        parse::ibeacon(0x0059, &IBEACON_ADV[7..]),
        Err(ParseError::NotABeacon)
    );
    let mut other_type = IBEACON_ADV[7..].to_vec();
    other_type[0] = 0x10;
    assert_eq!(
        parse::ibeacon(0x004C, &other_type),
        Err(ParseError::NotABeacon)
    );
    assert!(matches!(
        parse::ibeacon(0x004C, &IBEACON_ADV[7..20]),
        Err(ParseError::Length { .. })
    ));
}

#[test]
fn eddystone_uid_bytes_parse() {
    let frames = parse::advertisement(&EDDYSTONE_ADV).expect("parse");
    assert_eq!(frames.len(), 1);
    assert_eq!(
        frames[0].id.to_string(),
        "edd1ebeac04e5defa017:0bdb87539b67"
    );
    assert_eq!(frames[0].tx_power_1m_dbm, -18 - 41);
    // A TLM frame (0x20) on the same UUID is not a UID beacon.
    let mut tlm = EDDYSTONE_ADV[11..].to_vec();
    tlm[0] = 0x20;
    assert_eq!(
        parse::eddystone_uid(0xFEAA, &tlm),
        Err(ParseError::NotABeacon)
    );
    // An AD structure claiming more bytes than there are.
    let mut cut = EDDYSTONE_ADV.to_vec();
    cut.truncate(20);
    assert_eq!(parse::advertisement(&cut), Err(ParseError::Truncated(7)));
}

#[test]
fn distance_follows_the_log_distance_model() {
    assert!((parse::distance_m(-59, -59.0, 2.0) - 1.0).abs() < 1e-9);
    assert!((parse::distance_m(-59, -79.0, 2.0) - 10.0).abs() < 1e-9);
    assert!(parse::distance_m(-59, -90.0, 2.5) > parse::distance_m(-59, -70.0, 2.5));
}

fn ibeacon_id(minor: u16) -> BeaconId {
    BeaconId::IBeacon {
        uuid: [0x11; 16],
        major: 7,
        minor,
    }
}

#[test]
fn a_single_stray_packet_is_debounced_and_rssi_is_smoothed() {
    let mut d = Debouncer::new(SmoothingConfig::default());
    let id = ibeacon_id(1);
    assert_eq!(
        d.observe(id, -60, 1_000),
        None,
        "one packet is not a sighting"
    );
    let s = d.observe(id, -80, 2_000).expect("confirmed on the second");
    assert!(s.rssi_dbm > -80.0 && s.rssi_dbm < -60.0, "{}", s.rssi_dbm);
    // A packet long after is a fresh track again.
    assert_eq!(d.observe(id, -60, 60_000), None);
    assert_eq!(d.expire(80_000), vec![id]);
}

fn stop(n: u8) -> StopId {
    StopId::from_parts(1_780_000_000_000, [n; 10])
}

fn absent() -> AttemptOutcome {
    AttemptOutcome::Failed {
        reason: FailureReason::CustomerAbsent,
        detail: None,
    }
}

#[tokio::test]
async fn presence_scores_separate_real_attempts_from_absent_couriers() {
    let at_door = ibeacon_id(1);
    let elsewhere = ibeacon_id(2);
    let mut reg = BeaconRegistry::default();
    reg.register(at_door, Site::Stop(stop(1)));
    reg.register(elsewhere, Site::Depot);
    let beacons = vec![
        SimBeacon {
            id: at_door,
            x: 0.0,
            y: 0.0,
            tx_1m_dbm: -59,
        },
        SimBeacon {
            id: elsewhere,
            x: 500.0,
            y: 0.0,
            tx_1m_dbm: -59,
        },
    ];
    let seed = 7;
    // Courier at the door for 40 s, one scan a second.
    let near: Vec<(u64, f64, f64)> = (0..40).map(|i| (i * 1_000, 2.0, 1.0)).collect();
    let mut src = SimulatedSource::new(seed, beacons.clone(), near);
    let mut d = Debouncer::new(SmoothingConfig::default());
    let mut seen = Vec::new();
    while let Some(adv) = src.next().await.expect("sim") {
        for f in adv.frames() {
            if let Some(s) = d.observe(f.id, adv.rssi_dbm, adv.at_ms) {
                seen.push((s, f.tx_power_1m_dbm));
            }
        }
    }
    let present = score(stop(1), &reg, &seen, None);
    assert!(present.is_present(), "seed {seed}: {present:?}");
    assert_eq!(classify(&absent(), &present), AttemptClass::RealFailure);

    // "Customer absent" pressed 300 m away: no beacon of the stop, GPS far away.
    let far: Vec<(u64, f64, f64)> = (0..40).map(|i| (i * 1_000, 300.0, 0.0)).collect();
    let mut src = SimulatedSource::new(seed, beacons, far);
    let mut d = Debouncer::new(SmoothingConfig::default());
    let mut seen = Vec::new();
    while let Some(adv) = src.next().await.expect("sim") {
        for f in adv.frames() {
            if let Some(s) = d.observe(f.id, adv.rssi_dbm, adv.at_ms) {
                seen.push((s, f.tx_power_1m_dbm));
            }
        }
    }
    let gps = GpsDwell {
        distance_m: 300.0,
        dwell_ms: 5_000,
    };
    let away = score(stop(1), &reg, &seen, Some(gps));
    assert!(!away.is_present(), "seed {seed}: {away:?}");
    assert_eq!(classify(&absent(), &away), AttemptClass::NoRealAttempt);

    // GPS dwell alone at the door is evidence too.
    let dwell = score(
        stop(1),
        &reg,
        &[],
        Some(GpsDwell {
            distance_m: 12.0,
            dwell_ms: 90_000,
        }),
    );
    assert!(dwell.is_present());

    let mut m = FirstAttemptMetrics::default();
    m.add(classify(
        &AttemptOutcome::Delivered {
            method: DeliveryMethod::HandedToRecipient,
            recipient: None,
        },
        &away,
    ));
    m.add(classify(&absent(), &present));
    m.add(classify(&absent(), &away));
    assert_eq!(
        (m.delivered, m.real_failures, m.no_real_attempts),
        (1, 1, 1)
    );
    assert_eq!(m.success_rate(), Some(0.5));
}
