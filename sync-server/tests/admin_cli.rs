//! The `admin` subcommands of the real binary on a real SQLite file.

mod harness;

use harness::BIN;
use std::path::Path;
use std::process::{Command, Stdio};

fn enroll_code(db: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["admin", "enroll-code", "--database"])
        .arg(format!("sqlite://{}", db.display()))
        .args(args)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .output()
        .expect("run admin enroll-code");
    assert!(out.status.success(), "enroll-code failed: {:?}", out.status);
    serde_json::from_slice(&out.stdout).expect("enroll-code prints JSON")
}

fn courier_row(db: &Path, courier: &str) -> Option<(String, String)> {
    let conn = rusqlite::Connection::open(db).expect("open db");
    let mut stmt = conn
        .prepare("SELECT name, region FROM couriers WHERE courier_id = ?1")
        .expect("prepare");
    let mut rows = stmt
        .query_map([courier], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query");
    rows.next().map(|r| r.expect("row"))
}

fn codes_for(db: &Path, courier: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open db");
    conn.query_row(
        "SELECT COUNT(*) FROM enrollment_codes WHERE courier_id = ?1",
        [courier],
        |r| r.get(0),
    )
    .expect("count codes")
}

#[test]
fn an_enrollment_code_for_an_existing_courier_keeps_its_name_and_region() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("doorstep.db");
    let seed = harness::demo_seed(&db);
    let courier = seed.couriers[0].courier_id.to_string();
    let before = courier_row(&db, &courier).expect("seeded courier");
    assert!(!before.1.is_empty(), "the seed gives couriers a region");
    let codes_before = codes_for(&db, &courier);

    let out = enroll_code(
        &db,
        &["--courier-id", &courier, "--courier-name", "Someone Else"],
    );
    assert_eq!(out["courier_id"].as_str(), Some(courier.as_str()));
    assert!(out["code"].as_str().is_some_and(|c| !c.is_empty()), "{out}");

    assert_eq!(courier_row(&db, &courier), Some(before));
    assert_eq!(codes_for(&db, &courier), codes_before + 1);
}

#[test]
fn an_enrollment_code_for_a_new_courier_creates_it_with_its_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("doorstep.db");
    let out = enroll_code(&db, &["--courier-name", "Ada Novak"]);
    let courier = out["courier_id"].as_str().expect("courier id").to_owned();
    assert_eq!(
        courier_row(&db, &courier),
        Some(("Ada Novak".to_owned(), String::new()))
    );
    assert_eq!(codes_for(&db, &courier), 1);
}
