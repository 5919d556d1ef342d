//! Upgrading a version-2 database: the evidence chain heads are backfilled from the log.

use super::{MIGRATIONS, migrate};
use rusqlite::{Connection, params};

fn proof_row(conn: &Connection, device: &str, seq: i64, digest: Option<&str>, code: Option<&str>) {
    let signature = digest.map(|d| {
        serde_json::json!({"public_key": "k", "statement_digest": d, "prev_link": "", "signature": "s"})
    });
    let payload =
        serde_json::json!({"kind": "proof_captured", "payload": {"signature": signature}});
    conn.execute(
        "INSERT INTO events (event_id, device_id, device_seq, intent_key, fingerprint, kind, stop_id,
             hlc_wall, hlc_logical, received_at_ms, status, code, payload)
         VALUES (?1, ?2, ?3, 'k', 'f', 'proof_captured', 's', 0, 0, 0, 'applied', ?4, ?5)",
        params![format!("{device}-{seq}"), device, seq, code, payload.to_string()],
    )
    .expect("insert proof");
}

#[test]
fn a_v2_database_gets_its_evidence_heads_from_the_log() {
    let mut conn = Connection::open_in_memory().expect("db");
    for sql in &MIGRATIONS[..2] {
        conn.execute_batch(sql).expect("v1 + v2");
    }
    conn.pragma_update(None, "user_version", 2)
        .expect("version");
    conn.execute(
        "INSERT INTO couriers (courier_id, name) VALUES ('c', 'C')",
        [],
    )
    .expect("courier");
    for d in ["signer", "unsigned", "fresh"] {
        conn.execute(
            "INSERT INTO devices (device_id, courier_id, name, token_hash, enrolled_at_ms)
             VALUES (?1, 'c', ?1, ?1, 0)",
            [d],
        )
        .expect("device");
    }
    proof_row(&conn, "signer", 1, Some("aa"), None);
    proof_row(&conn, "signer", 2, Some("bb"), None);
    // A forged statement never became the head.
    proof_row(&conn, "signer", 3, Some("cc"), Some("invalid_signature"));
    proof_row(&conn, "signer", 4, None, None);
    proof_row(&conn, "unsigned", 1, None, None);

    migrate(&mut conn).expect("migrate to v3");
    let version: usize = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(version, MIGRATIONS.len());
    let head = |d: &str| -> String {
        conn.query_row(
            "SELECT evidence_head FROM devices WHERE device_id = ?1",
            [d],
            |r| r.get(0),
        )
        .expect("head")
    };
    assert_eq!(head("signer"), "bb");
    assert_eq!(head("unsigned"), "");
    assert_eq!(head("fresh"), "");
    let sessions: i64 = conn
        .query_row("SELECT COUNT(*) FROM upload_sessions", [], |r| r.get(0))
        .expect("upload_sessions exists");
    assert_eq!(sessions, 0);
}
