//! The real Bluetooth adapter on a machine without Bluetooth: a clear, typed "no Bluetooth
//! adapter", never a crash or a hang.
#![cfg(target_os = "linux")]

use courier_core::SystemClock;
use courier_core::ble::BleError;
use courier_core::ble::btle::BtleScanner;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn without_an_adapter_the_scanner_says_so() {
    let started = tokio::time::timeout(
        Duration::from_secs(30),
        BtleScanner::start(Arc::new(SystemClock)),
    )
    .await
    .expect("the scanner answers instead of hanging");
    let has_adapter = std::fs::read_dir("/sys/class/bluetooth")
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    match started {
        Err(e) => {
            assert_eq!(e, BleError::NoAdapter);
            assert_eq!(
                e.to_string(),
                "no Bluetooth adapter on this device; beacon presence is not recorded"
            );
        }
        Ok(_) => assert!(has_adapter, "a scanner started without any adapter"),
    }
}
