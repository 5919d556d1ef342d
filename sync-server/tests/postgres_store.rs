//! The PostgreSQL backend against a private cluster (crates/test-postgres): migrations,
//! identities, idempotency keys, escalations, upload sessions, reads over seeded rows, and the
//! mapping of lock and connection failures to transient errors.

use doorstep_server::blobs::sessions::{SessionRecord, UploadSessions};
use doorstep_server::evidence::EvidenceLog;
use doorstep_server::merge::NewEscalation;
use doorstep_server::presence::LocationLog;
use doorstep_server::store::postgres::{PgError, PgStore, SCHEMA_VERSION};
use doorstep_server::store::{
    DeviceAuth, FirstAttemptStats, IdempotencyState, RouteAccess, Store, StoreError,
};
use doorstep_shared::event::{
    AttemptOutcome, DeliveryAttempted, DeliveryMethod, EventPayload, GeoPoint, RouteAssigned,
    StopPlan, TimeWindow,
};
use doorstep_shared::protocol::EscalationKind;
use doorstep_shared::{
    BlobDigest, CourierId, DeviceId, EventId, RouteId, StopId, StopState, StopStatus,
};
use doorstep_test_postgres::fresh_database;
use std::sync::{Arc, Barrier};
use tokio_postgres::NoTls;
use uuid::Uuid;

fn courier() -> CourierId {
    CourierId(Uuid::now_v7())
}
fn device() -> DeviceId {
    DeviceId(Uuid::now_v7())
}

/// Runs `f` with a direct connection to `url` (outside the store), on a throw-away runtime.
fn raw<T>(url: &str, f: impl AsyncFnOnce(&tokio_postgres::Client) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("test runtime");
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, NoTls)
            .await
            .expect("connect directly");
        tokio::spawn(conn);
        f(&client).await
    })
}

fn versions(url: &str) -> Vec<i64> {
    raw(url, async |c| {
        c.query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("read schema_migrations")
        .iter()
        .map(|r| r.get(0))
        .collect()
    })
}

fn store() -> (PgStore, String) {
    let url = fresh_database();
    (PgStore::connect(&url).expect("connect"), url)
}

// ------------------------------------------------------------------------------ migrations

#[test]
fn a_fresh_database_gets_every_table_and_a_rerun_changes_nothing() {
    let url = fresh_database();
    let first = PgStore::connect(&url).expect("first connect");
    first.ping().expect("ping");
    assert_eq!(versions(&url), (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    let tables: Vec<String> = raw(&url, async |c| {
        c.query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' ORDER BY table_name",
            &[],
        )
        .await
        .expect("list tables")
        .iter()
        .map(|r| r.get(0))
        .collect()
    });
    for t in [
        "contact_attempts",
        "couriers",
        "devices",
        "dispatchers",
        "enrollment_codes",
        "escalations",
        "events",
        "feed",
        "idempotency_keys",
        "intents",
        "routes",
        "schema_migrations",
        "stop_assignments",
        "stops",
        "upload_sessions",
    ] {
        assert!(
            tables.iter().any(|x| x == t),
            "missing table {t}: {tables:?}"
        );
    }
    first
        .create_courier(courier(), "Ada", "north")
        .expect("write before rerun");
    drop(first);
    let again = PgStore::connect(&url).expect("second connect");
    assert_eq!(versions(&url), (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    assert_eq!(again.couriers().expect("couriers").len(), 1, "data kept");
}

#[test]
fn two_servers_starting_together_on_a_fresh_database_both_succeed() {
    for _ in 0..3 {
        let url = fresh_database();
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (url, barrier) = (url.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    PgStore::connect(&url).map(|s| s.ping())
                })
            })
            .collect();
        for h in handles {
            let result = h.join().expect("connect thread");
            assert!(
                matches!(result, Ok(Ok(()))),
                "concurrent connect: {result:?}"
            );
        }
        assert_eq!(versions(&url), (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    }
}

#[test]
fn a_database_newer_than_the_server_is_refused() {
    let (store, url) = store();
    drop(store);
    raw(&url, async |c| {
        c.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .expect("pretend a newer server migrated")
    });
    let err = PgStore::connect(&url).expect_err("newer schema refused");
    assert!(
        matches!(&err, StoreError::Fatal(m) if m.contains("newer than this server")),
        "{err:?}"
    );
}

// ------------------------------------------------------------------------------ identities

#[test]
fn couriers_devices_and_dispatchers_are_found_by_their_hashed_tokens() {
    let (store, _url) = store();
    let c = courier();
    store.create_courier(c, "Ada", "north").expect("courier");
    store
        .create_courier(c, "Ada L.", "south")
        .expect("an existing courier is kept");
    store
        .create_enrollment_code(c, "code-old", 1_000)
        .expect("expired code");
    store
        .create_enrollment_code(c, "code-ok", 10_000)
        .expect("code");
    let d = device();
    assert_eq!(
        store
            .enroll_device("code-old", d, "phone", "tok", None, 5_000)
            .expect("enroll expired"),
        None,
        "an expired code enrolls nothing"
    );
    assert_eq!(
        store
            .enroll_device("code-ok", d, "phone", "tok", Some("pk"), 5_000)
            .expect("enroll"),
        Some(c)
    );
    assert_eq!(
        store
            .enroll_device("code-ok", device(), "phone 2", "tok2", None, 5_001)
            .expect("enroll again"),
        None,
        "a code is consumed once"
    );
    assert_eq!(
        store.device_by_token("tok").expect("device by token"),
        Some(DeviceAuth {
            device_id: d,
            courier_id: c
        })
    );
    assert_eq!(store.device_by_token("tok2").expect("unknown token"), None);

    let couriers = store.couriers().expect("couriers");
    assert_eq!(couriers.len(), 1);
    assert_eq!(
        couriers[0].name, "Ada",
        "an existing courier keeps its name"
    );
    assert_eq!(couriers[0].devices, vec![d]);
    assert!(couriers[0].routes.is_empty());
    let health = store.device_health().expect("device health");
    assert_eq!(health.len(), 1);
    assert_eq!(
        (
            health[0].device_id,
            health[0].last_applied_seq,
            health[0].clock_skew_flagged
        ),
        (d, 0, false)
    );

    store
        .create_dispatcher("Grace", "dtok")
        .expect("dispatcher");
    assert_eq!(
        store
            .dispatcher_by_token("dtok")
            .expect("dispatcher by token")
            .map(|a| a.name),
        Some("Grace".to_owned())
    );
    assert_eq!(store.dispatcher_by_token("nope").expect("unknown"), None);
    let dup = store
        .create_dispatcher("Other", "dtok")
        .expect_err("a token hash is unique");
    assert!(matches!(dup, StoreError::Fatal(_)), "{dup:?}");
}

#[test]
fn two_devices_racing_for_one_code_enroll_exactly_one() {
    let (store, _url) = store();
    let store = Arc::new(store);
    let c = courier();
    store.create_courier(c, "Ada", "").expect("courier");
    store
        .create_enrollment_code(c, "shared", u64::MAX >> 2)
        .expect("code");
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                store.enroll_device("shared", device(), "phone", &format!("tok{i}"), None, 1)
            })
        })
        .collect();
    let won: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("enroll thread").expect("enroll"))
        .filter(Option::is_some)
        .collect();
    assert_eq!(won, vec![Some(c)]);
    assert_eq!(store.device_health().expect("devices").len(), 1);
}

// ------------------------------------------------------------------------------ idempotency

#[test]
fn idempotency_keys_start_replay_mismatch_and_can_be_abandoned() {
    let (store, _url) = store();
    assert_eq!(
        store
            .begin_idempotent("k1", "h1", 1, 60_000)
            .expect("begin"),
        IdempotencyState::Started
    );
    assert_eq!(
        store
            .begin_idempotent("k1", "h1", 2, 60_000)
            .expect("begin again"),
        IdempotencyState::InProgress
    );
    assert_eq!(
        store
            .begin_idempotent("k1", "other", 2, 60_000)
            .expect("begin other body"),
        IdempotencyState::Mismatch
    );
    store
        .finish_idempotent("k1", 201, "{\"ok\":1}")
        .expect("finish");
    store
        .abandon_idempotent("k1")
        .expect("abandon a finished key");
    assert_eq!(
        store
            .begin_idempotent("k1", "h1", 3, 60_000)
            .expect("replay"),
        IdempotencyState::Completed {
            status: 201,
            body: "{\"ok\":1}".into()
        },
        "a finished key is never abandoned"
    );
    assert_eq!(
        store
            .begin_idempotent("k1", "other", 3, 60_000)
            .expect("replay other"),
        IdempotencyState::Mismatch
    );

    assert_eq!(
        store
            .begin_idempotent("k2", "h", 1, 60_000)
            .expect("begin k2"),
        IdempotencyState::Started
    );
    store.abandon_idempotent("k2").expect("abandon");
    assert_eq!(
        store
            .begin_idempotent("k2", "h", 2, 60_000)
            .expect("begin after abandon"),
        IdempotencyState::Started
    );
}

#[test]
fn racing_claims_of_one_key_start_it_once() {
    let (store, _url) = store();
    let store = Arc::new(store);
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                store.begin_idempotent("race", "h", 1, 60_000)
            })
        })
        .collect();
    let states: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread").expect("begin"))
        .collect();
    assert_eq!(
        states
            .iter()
            .filter(|s| **s == IdempotencyState::Started)
            .count(),
        1,
        "{states:?}"
    );
    assert!(
        states
            .iter()
            .all(|s| matches!(s, IdempotencyState::Started | IdempotencyState::InProgress)),
        "{states:?}"
    );
}

// ------------------------------------------------------------------------------ escalations

#[test]
fn escalations_open_in_priority_order_and_resolve_once() {
    let (store, _url) = store();
    let stop = StopId(Uuid::now_v7());
    let d = device();
    let low = NewEscalation {
        kind: EscalationKind::ClockSkew,
        stop_id: None,
        detail: "skewed".into(),
    };
    let high = NewEscalation {
        kind: EscalationKind::IntentConflict,
        stop_id: Some(stop),
        detail: "conflict".into(),
    };
    assert!(EscalationKind::IntentConflict.priority() < EscalationKind::ClockSkew.priority());
    let record = |escalation, device, opened_at_ms| doorstep_server::store::EscalationRecord {
        escalation,
        device,
        event: None,
        opened_at_ms,
    };
    store
        .open_escalation(&record(&low, Some(d), 10))
        .expect("open low");
    store
        .open_escalation(&record(&high, None, 20))
        .expect("open high");
    let open = store.escalations(true).expect("open escalations");
    assert_eq!(
        open.iter().map(|e| e.kind).collect::<Vec<_>>(),
        vec![EscalationKind::IntentConflict, EscalationKind::ClockSkew],
        "most urgent first"
    );
    assert_eq!(open[0].stop_id, Some(stop));
    assert_eq!(open[1].device_id, Some(d));
    assert_eq!(open[1].opened_at_ms, 10);
    assert!(
        store
            .resolve_escalation(open[0].escalation_id)
            .expect("resolve")
    );
    assert!(
        !store
            .resolve_escalation(open[0].escalation_id)
            .expect("resolve again"),
        "already resolved"
    );
    let still_open = store.escalations(true).expect("open after resolve");
    assert_eq!(still_open.len(), 1);
    assert_eq!(still_open[0].kind, EscalationKind::ClockSkew);
    let all = store.escalations(false).expect("all escalations");
    assert_eq!(all.len(), 2);
    assert!(all[1].resolved, "resolved ones sort last: {all:?}");
    assert_eq!(store.fleet(0).expect("fleet").open_escalations, 1);
}

// ------------------------------------------------------------------------------ uploads

#[test]
fn upload_sessions_insert_advance_expire_and_remove() {
    let (store, _url) = store();
    let rec = |id: &str, expires| SessionRecord {
        id: id.to_owned(),
        digest: BlobDigest::of(id.as_bytes()),
        size: 5_000_000_000,
        offset: 0,
        expires_at_ms: expires,
    };
    store.insert_session(&rec("a", 100)).expect("insert a");
    store.insert_session(&rec("b", 200)).expect("insert b");
    store.insert_session(&rec("c", 300)).expect("insert c");
    assert!(
        store.insert_session(&rec("a", 100)).is_err(),
        "an upload id is unique"
    );
    assert_eq!(store.session("a").expect("read a"), Some(rec("a", 100)));
    store.advance_session("a", 4096, 400).expect("advance a");
    let a = store.session("a").expect("read a").expect("a exists");
    assert_eq!(
        (a.offset, a.expires_at_ms, a.size),
        (4096, 400, 5_000_000_000)
    );
    let mut expired = store.remove_expired_sessions(200).expect("expire");
    expired.sort();
    assert_eq!(expired, vec!["b".to_owned()], "expiry at now counts");
    store.remove_session("c").expect("remove c");
    assert_eq!(store.session("c").expect("read c"), None);
    assert_eq!(store.session("b").expect("read b"), None);
    assert!(store.session("a").expect("read a").is_some());
}

// ------------------------------------------------------------------------------ reads

fn plan(route: RouteId, courier: CourierId, stops: &[StopId]) -> RouteAssigned {
    RouteAssigned {
        route_id: route,
        courier_id: courier,
        day: "2026-03-02".into(),
        version: 1,
        depot: GeoPoint {
            lat: 60.17,
            lon: 24.94,
        },
        stops: stops
            .iter()
            .enumerate()
            .map(|(i, s)| StopPlan {
                stop_id: *s,
                sequence: i as u32 + 1,
                address: format!("Street {i}"),
                location: GeoPoint {
                    lat: 60.17 + i as f64 * 0.001,
                    lon: 24.94,
                },
                window: TimeWindow {
                    start_ms: 0,
                    end_ms: 1,
                },
                parcels: Vec::new(),
                customer_name: format!("Customer {i}"),
                access_notes: None,
                instructions: None,
            })
            .collect(),
    }
}

#[test]
fn reads_over_seeded_rows_match_what_was_stored() {
    let (store, url) = store();
    let (c, other) = (courier(), courier());
    store.create_courier(c, "Ada", "north").expect("courier");
    store
        .create_courier(other, "Bob", "")
        .expect("other courier");
    store.create_enrollment_code(c, "code", 10).expect("code");
    let d = device();
    store
        .enroll_device("code", d, "phone", "tok", None, 1)
        .expect("enroll");
    let (route, s1, s2) = (
        RouteId(Uuid::now_v7()),
        StopId(Uuid::now_v7()),
        StopId(Uuid::now_v7()),
    );
    let assigned = EventPayload::RouteAssigned(plan(route, c, &[s1, s2]));
    let attempt = EventPayload::DeliveryAttempted(DeliveryAttempted {
        stop_id: s1,
        attempt: 1,
        outcome: AttemptOutcome::Delivered {
            method: DeliveryMethod::HandedToRecipient,
            recipient: None,
        },
    });
    let office_event = EventId(Uuid::now_v7());
    let device_event = EventId(Uuid::now_v7());
    let cursor: i64 = raw(&url, async |db| {
        let EventPayload::RouteAssigned(p) = &assigned else {
            unreachable!()
        };
        db.execute(
            "INSERT INTO routes (route_id, courier_id, day, version, plan_json)
             VALUES ($1, $2, $3, 1, $4)",
            &[
                &route.to_string(),
                &c.to_string(),
                &p.day,
                &serde_json::to_string(p).expect("plan json"),
            ],
        )
        .await
        .expect("route");
        for (s, status, terminal) in [
            (s1, StopStatus::Planned, false),
            (s2, StopStatus::Delivered, true),
        ] {
            db.execute(
                "INSERT INTO stops (stop_id, route_id, state, status, terminal) VALUES ($1, $2, $3, $4, $5)",
                &[
                    &s.to_string(),
                    &route.to_string(),
                    &StopState::new(s).to_bytes(),
                    &serde_json::to_string(&status).expect("status json"),
                    &terminal,
                ],
            )
            .await
            .expect("stop");
        }
        let log_seq: i64 = db
            .query_one(
                "INSERT INTO events (event_id, intent_key, fingerprint, kind, hlc_wall, hlc_logical,
                     received_at_ms, status, payload)
                 VALUES ($1, 'route:x', 'fp', 'route_assigned', 100, 0, 100, 'applied', $2)
                 RETURNING log_seq",
                &[
                    &office_event.to_string(),
                    &serde_json::to_string(&assigned).expect("payload"),
                ],
            )
            .await
            .expect("office event")
            .get(0);
        db.execute(
            "INSERT INTO events (event_id, device_id, device_seq, intent_key, fingerprint, kind,
                 stop_id, hlc_wall, hlc_logical, device_time_ms, received_at_ms, clock_offset_ms,
                 status, payload)
             VALUES ($1, $2, 1, 'attempt:x:1', 'fp', 'delivery_attempted', $3, 150, 2, 140, 150, 0,
                 'applied', $4)",
            &[
                &device_event.to_string(),
                &d.to_string(),
                &s1.to_string(),
                &serde_json::to_string(&attempt).expect("payload"),
            ],
        )
        .await
        .expect("device event");
        db.query_one(
            "INSERT INTO feed (courier_id, log_seq) VALUES ($1, $2) RETURNING cursor",
            &[&c.to_string(), &log_seq],
        )
        .await
        .expect("feed")
        .get(0)
    });
    let cursor = cursor as u64;

    assert_eq!(store.latest_cursor().expect("latest cursor"), cursor);
    let (changes, more) = store.pull(c, 0, 10).expect("pull");
    assert!(!more);
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (
            changes[0].cursor,
            changes[0].event_id,
            changes[0].hlc.wall_ms
        ),
        (cursor, office_event, 100)
    );
    assert_eq!(changes[0].payload, assigned);
    assert!(store.pull(c, cursor, 10).expect("pull after").0.is_empty());
    assert_eq!(store.pull(c, 0, 0).expect("pull none"), (Vec::new(), true));
    assert!(store.pull(other, 0, 10).expect("other's pull").0.is_empty());

    assert!(
        matches!(store.route_for_courier(c, route).expect("route"), RouteAccess::Ok(p) if p.stops.len() == 2)
    );
    assert!(matches!(
        store
            .route_for_courier(other, route)
            .expect("other's route"),
        RouteAccess::Forbidden
    ));
    assert!(matches!(
        store
            .route_for_courier(c, RouteId(Uuid::now_v7()))
            .expect("no route"),
        RouteAccess::NotFound
    ));
    assert_eq!(store.route_owner(route).expect("owner"), Some(c));

    let couriers = store.couriers().expect("couriers");
    let ada = couriers.iter().find(|x| x.courier_id == c).expect("Ada");
    assert_eq!(
        (ada.routes.clone(), ada.stops_total, ada.stops_done),
        (vec![route], 2, 1)
    );
    let routes = store.routes().expect("routes");
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].stops.len(), 2);

    let detail = store
        .route_detail(route)
        .expect("route detail")
        .expect("exists");
    assert_eq!(detail.courier_name, "Ada");
    assert_eq!(
        detail.stops.iter().map(|s| s.status).collect::<Vec<_>>(),
        vec![StopStatus::Planned, StopStatus::Delivered]
    );
    let ctx = store
        .stop_context(s2)
        .expect("stop context")
        .expect("exists");
    assert_eq!(
        (ctx.route_id, ctx.stop.stop_id, ctx.stop.sequence),
        (route, s2, 2)
    );
    assert!(
        store
            .stop_context(StopId(Uuid::now_v7()))
            .expect("none")
            .is_none()
    );

    assert_eq!(
        store.stop_state(s1).expect("state").map(|s| s.view()),
        Some(StopState::new(s1).view())
    );
    let sd = store.stop_detail(s1).expect("stop detail").expect("exists");
    assert_eq!(sd.events.len(), 1);
    assert_eq!(sd.events[0].payload, attempt);
    let evs = store.device_events(d, 0, 10).expect("device events");
    assert_eq!(
        evs.iter()
            .map(|e| (e.event_id, e.device_seq))
            .collect::<Vec<_>>(),
        vec![(device_event, Some(1))]
    );
    assert!(store.device_events(d, 1, 10).expect("after 1").is_empty());

    assert_eq!(
        store.first_attempt_stats().expect("first attempts"),
        FirstAttemptStats {
            first_attempts: 1,
            delivered: 1,
            no_real: 0
        }
    );
    let m = store.dashboard_metrics(200, 60_000, 4).expect("metrics");
    assert_eq!(
        (m.totals.first_attempts, m.totals.first_attempts_delivered),
        (1, 1)
    );
    assert_eq!(m.by_courier.len(), 1);
    assert_eq!(m.by_courier[0].label, "Ada");
    assert_eq!(m.totals.mean_sync_lag_ms, Some(10.0));

    let fleet = store.fleet(1_000).expect("fleet");
    let ada = fleet
        .couriers
        .iter()
        .find(|x| x.courier_id == c)
        .expect("Ada on the map");
    assert_eq!(
        (ada.route_id, ada.points.len(), ada.devices.len()),
        (Some(route), 2, 1)
    );
    assert_eq!(
        fleet
            .couriers
            .iter()
            .map(|x| x.name.as_str())
            .collect::<Vec<_>>(),
        vec!["Ada", "Bob"]
    );
    assert!(store.logged_proofs(s1).expect("proofs").is_empty());
    assert!(store.location_fixes(d, 0, 1_000).expect("fixes").is_empty());
}

// ------------------------------------------------------------------------------ failures

#[test]
fn a_server_that_is_not_there_is_transient() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let err = PgStore::connect(&format!("postgres://postgres@127.0.0.1:{port}/x"))
        .expect_err("nothing listens");
    assert!(matches!(err, StoreError::Transient(_)), "{err:?}");
}

/// Before a standby is promoted, a `read-write` URL finds no writable host: that is transient,
/// and the error says why (the URL's `options` make this server read-only the way a standby
/// is).
#[test]
fn no_writable_host_is_transient() {
    let url = fresh_database();
    let read_only = format!(
        "{url}?target_session_attrs=read-write&options=-c%20default_transaction_read_only%3Don"
    );
    let err = PgStore::connect(&read_only).expect_err("no host accepts writes");
    assert!(
        matches!(&err, StoreError::Transient(m) if m.contains("does not allow writes")),
        "{err:?}"
    );
}

/// Running out of connections (class 53, insufficient resources) is transient: the same
/// connection succeeds once another one is gone.
#[test]
fn too_many_connections_is_transient() {
    let url = fresh_database();
    let role = format!("limited_{}", Uuid::now_v7().simple());
    raw(&url, async |c| {
        c.batch_execute(&format!("CREATE ROLE {role} LOGIN CONNECTION LIMIT 1"))
            .await
            .expect("create role");
    });
    let as_role = url.replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("test runtime");
    rt.block_on(async {
        let (held, conn) = tokio_postgres::connect(&as_role, NoTls)
            .await
            .expect("the role's one connection");
        let driver = tokio::spawn(conn);
        let refused = tokio_postgres::connect(&as_role, NoTls)
            .await
            .err()
            .expect("a second connection is over the limit");
        assert_eq!(
            refused.code(),
            Some(&tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS)
        );
        assert!(PgError::from(refused).is_transient());
        drop(held);
        driver
            .await
            .expect("connection task")
            .expect("the connection closes cleanly");
        // The server may take a moment to let the closed session go; poll with a deadline.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match tokio_postgres::connect(&as_role, NoTls).await {
                Ok(_) => break,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    assert!(PgError::from(e).is_transient());
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => panic!("the retried connection never succeeded: {e:?}"),
            }
        }
    });
}

/// Two transactions lock two rows in opposite orders; PostgreSQL aborts one with 40P01.
#[test]
fn a_deadlock_is_transient_and_so_is_a_lock_timeout() {
    let (store, url) = store();
    drop(store);
    let results = raw(&url, async |setup| {
        setup
            .batch_execute(
                "CREATE TABLE pair (id INT PRIMARY KEY); INSERT INTO pair VALUES (1), (2);",
            )
            .await
            .expect("setup");
        let connect = async || {
            let (c, conn) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
            tokio::spawn(conn);
            c.batch_execute("SET deadlock_timeout = '50ms'; BEGIN")
                .await
                .expect("begin");
            c
        };
        let (a, b) = (connect().await, connect().await);
        let lock = "SELECT id FROM pair WHERE id = $1 FOR UPDATE";
        a.query(lock, &[&1_i32]).await.expect("a locks 1");
        b.query(lock, &[&2_i32]).await.expect("b locks 2");
        let (ra, rb) = tokio::join!(a.query(lock, &[&2_i32]), b.query(lock, &[&1_i32]));
        let lock_timeout = {
            let c = connect().await;
            c.batch_execute("SET lock_timeout = '10ms'")
                .await
                .expect("set");
            // Whichever of a and b survived still holds its locks until it ends.
            let r = c
                .query(lock, &[&if ra.is_ok() { 1_i32 } else { 2_i32 }])
                .await;
            r.map(|_| ())
        };
        (ra.map(|_| ()), rb.map(|_| ()), lock_timeout)
    });
    let (ra, rb, lock_timeout) = results;
    assert!(
        ra.is_ok() != rb.is_ok(),
        "exactly one is the victim: {ra:?} {rb:?}"
    );
    let victim = ra.err().or(rb.err()).expect("a victim");
    assert_eq!(
        victim.code(),
        Some(&tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED)
    );
    assert!(matches!(
        StoreError::from(PgError::from(victim)),
        StoreError::Transient(_)
    ));
    let timeout = lock_timeout.expect_err("the row is locked");
    assert_eq!(
        timeout.code(),
        Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE)
    );
    assert!(matches!(
        StoreError::from(PgError::from(timeout)),
        StoreError::Transient(_)
    ));
}

#[test]
fn a_multi_host_url_falls_through_to_the_host_that_answers() {
    let url = fresh_database();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let live = url
        .strip_prefix("postgres://postgres@")
        .expect("test URL shape");
    let (host_port, db) = live.split_once('/').expect("db in URL");
    let multi = format!(
        "postgres://postgres@127.0.0.1:{dead},{host_port}/{db}?target_session_attrs=read-write"
    );
    let store = PgStore::connect(&multi).expect("second host answers");
    store.ping().expect("ping through the second host");
}

#[test]
fn a_store_can_be_dropped_inside_an_async_context() {
    let (store, _url) = store();
    store.ping().expect("ping");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async move { drop(store) });
}
