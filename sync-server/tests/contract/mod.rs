//! The store contract: one story over every `Store` method, run against every backend. It goes
//! through the push and office algorithms (the only way to reach the units of work), so a
//! backend that stores something wrong, or decides something on its own, fails here.
#![allow(dead_code)] // each test binary uses a different part

pub mod differential;

use crate::harness::{Device, delivered, scan};
use doorstep_server::store::{
    DeviceAuth, EscalationRecord, IdempotencyState, OfficeEvent, OfficeOutcome, PushContext,
    RouteAccess, SessionRecord, Store,
};
use doorstep_shared::event::{
    EventPayload, GeoPoint, RouteAssigned, ScanPhase, StopCancelled, StopPlan, StopReassigned,
    TimeWindow,
};
use doorstep_shared::protocol::{EscalationKind, PushRequest, PushResponse, PushStatus};
use doorstep_shared::{
    BlobDigest, CourierId, DeviceId, EventId, HlcStamp, ParcelBarcode, ProblemCode, RouteId,
    StopId, StopStatus,
};

pub const T0: u64 = 1_780_000_000_000;

fn uuid(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

/// A route for `courier` with stops `first..first+n` (ids from their numbers).
pub fn route(route: u128, courier: CourierId, first: u128, n: u128, version: u32) -> RouteAssigned {
    RouteAssigned {
        route_id: RouteId(uuid(route)),
        courier_id: courier,
        day: "2026-06-01".to_owned(),
        version,
        depot: GeoPoint {
            lat: 52.52,
            lon: 13.405,
        },
        stops: (first..first + n)
            .map(|i| StopPlan {
                stop_id: StopId(uuid(i)),
                sequence: u32::try_from(i - first + 1).expect("few stops"),
                address: format!("Teststraße {i}"),
                location: GeoPoint {
                    lat: 52.5,
                    lon: 13.4,
                },
                window: TimeWindow {
                    start_ms: T0,
                    end_ms: T0 + 3_600_000,
                },
                parcels: vec![ParcelBarcode::parse(&format!("PKG-{i}")).expect("barcode")],
                customer_name: "Ada Novak".to_owned(),
                access_notes: None,
                instructions: None,
            })
            .collect(),
    }
}

pub fn office<S: Store>(store: &S, payload: EventPayload, at: u64) -> OfficeOutcome {
    office_with_id(store, payload, EventId(uuid::Uuid::now_v7()), at)
}

/// An office event with a chosen id (a replayed history must fold to the same bytes).
pub fn office_with_id<S: Store>(
    store: &S,
    payload: EventPayload,
    id: EventId,
    at: u64,
) -> OfficeOutcome {
    let ev = OfficeEvent {
        payload,
        issued_by: "contract".to_owned(),
        recorded_at_ms: at,
        hlc: HlcStamp {
            wall_ms: at,
            logical: 0,
        },
        contact_reached: None,
    };
    doorstep_server::office::record_office_event(store, &ev, id).expect("office event")
}

pub fn push<S: Store>(
    store: &S,
    device: &Device,
    events: Vec<doorstep_shared::event::EventEnvelope>,
) -> PushResponse {
    let req = PushRequest {
        device_id: device.id,
        sent_at_ms: T0,
        events,
        queue: None,
    };
    let auth = DeviceAuth {
        device_id: device.id,
        courier_id: device.courier,
    };
    let ctx = PushContext {
        received_at_ms: T0,
        clock_offset_ms: 0,
    };
    doorstep_server::push::push(store, auth, &req, ctx)
        .expect("push")
        .response
}

fn statuses(r: &PushResponse) -> Vec<PushStatus> {
    r.results.iter().map(|r| r.status).collect()
}

/// Enrolls a device for `courier` through a fresh code; returns it with its token.
pub fn enroll<S: Store>(store: &S, courier: CourierId, n: u128) -> Device {
    let code = format!("code-{n}");
    store
        .create_enrollment_code(courier, &code, T0 + 1_000)
        .expect("code");
    let device = DeviceId(uuid(0xD000 + n));
    let token = format!("token-{n}");
    let got = store
        .enroll_device(&code, device, "handheld", &token, None, T0)
        .expect("enroll");
    assert_eq!(got, Some(courier), "a fresh code enrolls");
    // Its own seed: two devices drawing event ids in the same millisecond must not collide.
    let mut d = Device::new(device, courier, token, 7_u64.wrapping_add(n as u64));
    d.clock_offset_ms = 0;
    d
}

/// Every method of the trait, in the order a day uses them.
pub fn story<S: Store>(store: S) {
    store.ping().expect("ping");

    // --- identities ---
    let ada = CourierId(uuid(0xA));
    let ben = CourierId(uuid(0xB));
    store
        .create_courier(ada, "Ada Novak", "north")
        .expect("ada");
    store.create_courier(ben, "Ben Berg", "south").expect("ben");
    store
        .create_courier(ada, "Someone Else", "")
        .expect("an existing courier");
    let couriers = store.couriers().expect("couriers");
    let a = couriers
        .iter()
        .find(|c| c.courier_id == ada)
        .expect("ada listed");
    assert_eq!(
        (a.name.as_str(), couriers.len()),
        ("Ada Novak", 2),
        "an existing courier is kept as it is"
    );

    let dev_a = enroll(&store, ada, 1);
    assert_eq!(
        store
            .enroll_device("code-1", DeviceId(uuid(0xE1)), "again", "t", None, T0)
            .expect("reuse"),
        None,
        "a code enrolls once"
    );
    store
        .create_enrollment_code(ben, "expired", T0 - 1)
        .expect("expired code");
    assert_eq!(
        store
            .enroll_device("expired", DeviceId(uuid(0xE2)), "late", "t2", None, T0)
            .expect("expired"),
        None,
        "an expired code enrolls nothing"
    );
    let dev_b = enroll(&store, ben, 2);
    assert_eq!(
        store.device_by_token("token-1").expect("token"),
        Some(DeviceAuth {
            device_id: dev_a.id,
            courier_id: ada
        })
    );
    assert_eq!(store.device_by_token("nope").expect("unknown"), None);
    store
        .create_dispatcher("Night shift", "disp")
        .expect("dispatcher");
    assert_eq!(
        store
            .dispatcher_by_token("disp")
            .expect("dispatcher")
            .map(|d| d.name),
        Some("Night shift".to_owned())
    );
    assert_eq!(store.dispatcher_by_token("token-1").expect("not one"), None);

    // --- office: route plans ---
    let plan_a = route(0x100, ada, 0x1000, 3, 1);
    let plan_b = route(0x200, ben, 0x2000, 2, 1);
    let OfficeOutcome::Applied { cursor: c1 } =
        office(&store, EventPayload::RouteAssigned(plan_a.clone()), T0)
    else {
        panic!("a new plan applies")
    };
    assert!(c1 > 0);
    assert_eq!(
        office(&store, EventPayload::RouteAssigned(plan_a.clone()), T0),
        OfficeOutcome::Duplicate
    );
    let mut changed = plan_a.clone();
    changed.stops.pop();
    assert!(matches!(
        office(&store, EventPayload::RouteAssigned(changed), T0),
        OfficeOutcome::Conflict(_)
    ));
    let OfficeOutcome::Applied { cursor: c2 } =
        office(&store, EventPayload::RouteAssigned(plan_b.clone()), T0)
    else {
        panic!("b's plan applies")
    };
    assert!(c2 > c1, "cursors grow");
    assert!(store.latest_cursor().expect("latest") >= c2);
    let (changes, more) = store.pull(ada, 0, 100).expect("pull");
    assert_eq!((changes.len(), more), (1, false), "ada sees her plan only");
    assert_eq!(changes[0].cursor, c1);
    assert!(store.pull(ada, c1, 100).expect("after").0.is_empty());
    let r_a = plan_a.route_id;
    assert!(
        matches!(store.route_for_courier(ada, r_a).expect("own"), RouteAccess::Ok(p) if p.stops.len() == 3)
    );
    assert!(matches!(
        store.route_for_courier(ben, r_a).expect("other"),
        RouteAccess::Forbidden
    ));
    assert!(matches!(
        store
            .route_for_courier(ada, RouteId(uuid(0x999)))
            .expect("none"),
        RouteAccess::NotFound
    ));
    assert_eq!(store.route_owner(r_a).expect("owner"), Some(ada));
    assert_eq!(store.routes().expect("routes").len(), 2);

    // --- push: apply, replay, gap, conflict ---
    let mut dev_a = dev_a;
    let s1 = plan_a.stops[0].stop_id;
    let s2 = plan_a.stops[1].stop_id;
    let day = vec![
        dev_a.event(scan(s1, "PKG-4096", ScanPhase::Loaded)),
        dev_a.event(delivered(s1, 1)),
        dev_a.location(),
    ];
    let first = push(&store, &dev_a, day.clone());
    assert_eq!(statuses(&first), vec![PushStatus::Applied; 3]);
    assert_eq!(first.last_applied_seq, 3);
    let replay = push(&store, &dev_a, day.clone());
    assert_eq!(statuses(&replay), vec![PushStatus::Duplicate; 3]);
    assert_eq!(replay.results[0].first_status, Some(PushStatus::Applied));
    let ahead = dev_a.event_at(9, scan(s2, "PKG-4097", ScanPhase::Loaded));
    let gap = push(&store, &dev_a, vec![ahead]);
    assert_eq!(statuses(&gap), vec![PushStatus::Gap]);
    assert_eq!(gap.last_applied_seq, 3);
    // The same intent again with another payload: a conflict, escalated.
    let mut other = dev_a.event(delivered(s1, 1));
    if let EventPayload::DeliveryAttempted(a) = &mut other.payload
        && let doorstep_shared::event::AttemptOutcome::Delivered { recipient, .. } = &mut a.outcome
    {
        *recipient = Some("a neighbour".to_owned());
    }
    let conflict = push(&store, &dev_a, vec![other]);
    assert_eq!(statuses(&conflict), vec![PushStatus::Conflict]);
    // Ben's device may not act on Ada's stop: rejected, and the sequence still advances.
    let mut dev_b = dev_b;
    let trespass = dev_b.event(scan(s2, "PKG-4097", ScanPhase::Loaded));
    let foreign = push(&store, &dev_b, vec![trespass]);
    assert_eq!(foreign.results[0].code, Some(ProblemCode::Forbidden));
    assert_eq!(foreign.last_applied_seq, 1);

    let state = store.stop_state(s1).expect("state").expect("stop exists");
    assert_eq!(state.status(), StopStatus::Delivered);
    assert!(
        store
            .stop_state(StopId(uuid(0xFFFF)))
            .expect("none")
            .is_none()
    );
    let log = store.device_events(dev_a.id, 0, 100).expect("log");
    assert_eq!(
        log.iter().map(|e| e.device_seq).collect::<Vec<_>>(),
        vec![Some(1), Some(2), Some(3), Some(4)],
        "the device's log is gap-free and ordered"
    );
    assert_eq!(store.device_events(dev_a.id, 2, 1).expect("page").len(), 1);
    let detail = store.stop_detail(s1).expect("detail").expect("stop");
    assert!(
        detail.events.len() >= 3,
        "plan + scan + delivery + conflict"
    );
    let health = store.device_health().expect("health");
    let h = health
        .iter()
        .find(|d| d.device_id == dev_a.id)
        .expect("listed");
    assert_eq!((h.last_applied_seq, h.events_conflicted), (4, 1));
    let fixes = store
        .location_fixes(dev_a.id, 0, u64::MAX / 4)
        .expect("fixes");
    assert_eq!(fixes.len(), 1);
    assert!(store.logged_proofs(s1).expect("proofs").is_empty());
    let stats = store.first_attempt_stats().expect("stats");
    assert_eq!((stats.first_attempts, stats.delivered), (1, 1));

    // --- office on a stop: reassign, cancel; street facts stand ---
    let s3 = plan_a.stops[2].stop_id;
    let moved = EventPayload::StopReassigned(StopReassigned {
        stop_id: s3,
        from_route: r_a,
        to_route: plan_b.route_id,
        to_courier: ben,
    });
    let OfficeOutcome::Applied { cursor: c3 } = office(&store, moved, T0 + 10) else {
        panic!("reassign applies")
    };
    assert_eq!(
        store.pull(ada, c1, 100).expect("ada").0.len(),
        1,
        "the old courier hears of it"
    );
    assert_eq!(
        store
            .pull(ben, c2, 100)
            .expect("ben")
            .0
            .last()
            .map(|c| c.cursor),
        Some(c3)
    );
    assert!(
        matches!(store.route_for_courier(ben, plan_b.route_id).expect("b"), RouteAccess::Ok(p) if p.stops.iter().any(|s| s.stop_id == s3))
    );
    let cancel = |stop| {
        EventPayload::StopCancelled(StopCancelled {
            stop_id: stop,
            reason: "shipper recalled".to_owned(),
        })
    };
    assert!(matches!(
        office(&store, cancel(s1), T0 + 20),
        OfficeOutcome::Applied { .. }
    ));
    assert_eq!(
        store.stop_state(s1).expect("s1").expect("s1").status(),
        StopStatus::Delivered,
        "a delivery made in the street beats the office's cancel"
    );
    assert!(matches!(
        office(&store, cancel(StopId(uuid(0xBAD))), T0),
        OfficeOutcome::UnknownTarget(_)
    ));

    // --- escalations ---
    let open = store.escalations(true).expect("open");
    assert!(
        open.iter()
            .any(|e| e.kind == EscalationKind::IntentConflict)
    );
    assert!(open.iter().any(|e| e.kind == EscalationKind::RejectedEvent));
    let manual = doorstep_server::merge::NewEscalation {
        kind: EscalationKind::CustomerUnreachable,
        stop_id: Some(s2),
        detail: "by hand".to_owned(),
    };
    store
        .open_escalation(&EscalationRecord {
            escalation: &manual,
            device: None,
            event: None,
            opened_at_ms: T0,
        })
        .expect("open by hand");
    let id = store
        .escalations(true)
        .expect("open")
        .into_iter()
        .find(|e| e.detail == "by hand")
        .expect("listed")
        .escalation_id;
    assert!(store.resolve_escalation(id).expect("resolve"));
    assert!(
        !store.resolve_escalation(id).expect("twice"),
        "resolving twice changes nothing"
    );
    assert!(
        store
            .escalations(true)
            .expect("open")
            .iter()
            .all(|e| e.escalation_id != id)
    );
    assert!(
        store
            .escalations(false)
            .expect("all")
            .iter()
            .any(|e| e.escalation_id == id)
    );

    // --- idempotency keys ---
    let lease = 60_000;
    assert_eq!(
        store
            .begin_idempotent("k1", "h1", T0, lease)
            .expect("claim"),
        IdempotencyState::Started
    );
    assert_eq!(
        store
            .begin_idempotent("k1", "h1", T0 + 1, lease)
            .expect("busy"),
        IdempotencyState::InProgress
    );
    assert_eq!(
        store
            .begin_idempotent("k1", "h2", T0 + 1, lease)
            .expect("other"),
        IdempotencyState::Mismatch
    );
    assert_eq!(
        store
            .begin_idempotent("k1", "h1", T0 + lease + 1, lease)
            .expect("after the lease"),
        IdempotencyState::Started,
        "a claim its server never finished expires"
    );
    store
        .finish_idempotent("k1", 201, "{\"ok\":true}")
        .expect("finish");
    assert_eq!(
        store
            .begin_idempotent("k1", "h1", T0 + 10 * lease, lease)
            .expect("replay"),
        IdempotencyState::Completed {
            status: 201,
            body: "{\"ok\":true}".to_owned()
        }
    );
    assert_eq!(
        store.begin_idempotent("k2", "h", T0, lease).expect("k2"),
        IdempotencyState::Started
    );
    store.abandon_idempotent("k2").expect("abandon");
    assert_eq!(
        store.begin_idempotent("k2", "h", T0, lease).expect("again"),
        IdempotencyState::Started
    );

    // --- live-stream tickets ---
    store
        .issue_live_ticket("t1", "Night shift", T0 + 30_000, T0)
        .expect("issue");
    store
        .issue_live_ticket("t2", "Night shift", T0 + 10, T0)
        .expect("issue");
    assert_eq!(
        store.redeem_live_ticket("t1", T0 + 1).expect("redeem"),
        Some("Night shift".to_owned())
    );
    assert_eq!(
        store.redeem_live_ticket("t1", T0 + 2).expect("again"),
        None,
        "single use"
    );
    assert_eq!(
        store.redeem_live_ticket("t2", T0 + 10).expect("late"),
        None,
        "expired"
    );
    assert_eq!(store.redeem_live_ticket("nope", T0).expect("unknown"), None);

    // --- upload sessions ---
    let digest = BlobDigest::of(b"photo");
    let session = |id: &str, expires| SessionRecord {
        id: id.to_owned(),
        digest: digest.clone(),
        size: 5,
        offset: 0,
        expires_at_ms: expires,
    };
    store
        .insert_session(&session("u1", T0 + 100))
        .expect("insert");
    store
        .insert_session(&session("u2", T0 + 5))
        .expect("insert");
    store.advance_session("u1", 3, T0 + 200).expect("advance");
    let u1 = store.session("u1").expect("read").expect("u1");
    assert_eq!(
        (u1.offset, u1.expires_at_ms, u1.digest),
        (3, T0 + 200, digest.clone())
    );
    assert_eq!(
        store.remove_expired_sessions(T0 + 10).expect("expire"),
        vec!["u2".to_owned()]
    );
    store.remove_session("u1").expect("remove");
    assert_eq!(store.session("u1").expect("gone"), None);

    // --- dashboard reads ---
    let fleet = store.fleet(T0 + 1_000).expect("fleet");
    assert_eq!(fleet.couriers.len(), 2);
    let detail = store.route_detail(r_a).expect("route").expect("exists");
    assert_eq!(detail.stops.len(), 2, "one stop moved away");
    assert!(
        store
            .route_detail(RouteId(uuid(0x998)))
            .expect("none")
            .is_none()
    );
    let ctx = store.stop_context(s1).expect("ctx").expect("exists");
    assert_eq!(ctx.stop.stop_id, s1);
    let metrics = store
        .dashboard_metrics(T0 + 3_600_000, 3_600_000, 4)
        .expect("metrics");
    assert!(metrics.totals.first_attempts >= 1, "{metrics:?}");

    orders(&store);
}

/// Shippers, integration tokens and order versions.
fn orders<S: Store>(store: &S) {
    use doorstep_server::intake::record_orders;
    use doorstep_shared::ShipperId;
    use doorstep_shared::order::{Order, OrderParcel, OrderStatus, Recipient};

    let shipper = store
        .create_integration(ShipperId(uuid(0x5)), "Parcelhaus", "int-hash-1")
        .expect("integration");
    assert_eq!(shipper, ShipperId(uuid(0x5)));
    let same = store
        .create_integration(ShipperId(uuid(0x6)), "Parcelhaus", "int-hash-2")
        .expect("second token");
    assert_eq!(same, shipper, "a second token of one shipper");
    let other = store
        .create_integration(ShipperId(uuid(0x7)), "Boxwerk", "int-hash-3")
        .expect("other shipper");
    let auth = store
        .integration_by_token("int-hash-2")
        .expect("lookup")
        .expect("known token");
    assert_eq!((auth.shipper, auth.name.as_str()), (shipper, "Parcelhaus"));
    assert!(
        store
            .integration_by_token("nope")
            .expect("lookup")
            .is_none()
    );

    let order = Order {
        external_id: "PH-1".to_owned(),
        date: "2026-06-01".to_owned(),
        recipient: Recipient {
            name: "Ada Novak".to_owned(),
            phone: Some("030 1234".to_owned()),
        },
        address: "Teststraße 1".to_owned(),
        location: GeoPoint {
            lat: 52.5,
            lon: 13.4,
        },
        window: TimeWindow {
            start_ms: T0,
            end_ms: T0 + 3_600_000,
        },
        service_minutes: 2,
        parcels: vec![OrderParcel {
            barcode: ParcelBarcode::parse("PH-PARCEL-1").expect("barcode"),
            weight_g: 500,
            volume_cm3: 1_000,
        }],
        access_notes: None,
        cash_due_minor: Some(1_250),
        priority: 1,
    };
    let statuses =
        |r: Vec<doorstep_shared::order::OrderResult>| -> Vec<(OrderStatus, Option<u32>)> {
            r.iter().map(|r| (r.status, r.version)).collect()
        };
    let first = record_orders(store, shipper, std::slice::from_ref(&order), T0).expect("orders");
    assert_eq!(statuses(first), vec![(OrderStatus::Created, Some(1))]);
    let again = record_orders(store, shipper, std::slice::from_ref(&order), T0).expect("orders");
    assert_eq!(statuses(again), vec![(OrderStatus::Duplicate, Some(1))]);
    let mut changed = order.clone();
    changed.service_minutes = 5;
    let next = record_orders(store, shipper, std::slice::from_ref(&changed), T0).expect("orders");
    assert_eq!(statuses(next), vec![(OrderStatus::Updated, Some(2))]);
    assert_eq!(
        store.order(shipper, "PH-1").expect("read"),
        Some((2, changed.clone()))
    );
    assert_eq!(store.order(other, "PH-1").expect("read"), None);
    let theirs = record_orders(store, other, std::slice::from_ref(&order), T0).expect("orders");
    assert_eq!(statuses(theirs), vec![(OrderStatus::Created, Some(1))]);
}
