//! The route screen's re-plan, end to end inside the core: a pulled route with a zig-zag order,
//! a proposal from the solver alone (no runtime needed), accept → the local route takes the new
//! order in the same transaction as the `RouteReplanned` fact, undo → a second fact restores
//! the old order, and both facts reach the server exactly once.

mod common;

use std::sync::Arc;

use common::{T0, parcel};
use courier_core::outbox::AppendOutcome;
use courier_core::reroute::from_view::{now_for, plan_input};
use courier_core::reroute::{Proposal, Rerouter, Review, ReviewError, undo_digest};
use courier_core::testing::FakeServer;
use courier_core::{Clock, Device, ManualClock, SyncConfig, SyncEngine};
use doorstep_shared::event::{GeoPoint, RouteAssigned, ScanPhase, StopPlan, TimeWindow};
use doorstep_shared::protocol::{EnrollRequest, PushStatus};
use doorstep_shared::{CourierId, EventPayload, RouteId, StopId};
use doorstep_solver::Budget;

/// 2026-06-01 00:00 UTC.
const DAY_START: u64 = 20_605 * 86_400_000;
const DEPOT: GeoPoint = GeoPoint {
    lat: 52.5,
    lon: 13.4,
};

fn stop(i: usize) -> StopId {
    common::stop_id(i)
}

/// Eight stops on a line north of the depot, planned in a zig-zag (0, 7, 1, 6, ...): any
/// sensible solver straightens it.
fn zigzag_route() -> RouteAssigned {
    let visit = [0usize, 7, 1, 6, 2, 5, 3, 4];
    RouteAssigned {
        route_id: RouteId::from_parts(T0, [3; 10]),
        courier_id: CourierId::from_parts(T0, [8; 10]),
        day: "2026-06-01".into(),
        version: 1,
        depot: DEPOT,
        stops: visit
            .iter()
            .enumerate()
            .map(|(seq, &i)| StopPlan {
                stop_id: stop(i),
                sequence: seq as u32 + 1,
                address: format!("Street {i}"),
                location: GeoPoint {
                    lat: DEPOT.lat + (i as f64 + 1.0) / 200.0,
                    lon: DEPOT.lon,
                },
                window: TimeWindow {
                    start_ms: DAY_START + 9 * 3_600_000,
                    end_ms: DAY_START + 18 * 3_600_000,
                },
                parcels: vec![parcel(i, 0)],
                customer_name: format!("Customer {i}"),
                access_notes: None,
                instructions: None,
            })
            .collect(),
    }
}

async fn device_with_route(
    dir: &tempfile::TempDir,
    server: &Arc<FakeServer>,
    clock: Arc<dyn Clock>,
) -> Device {
    let device = Device::open(dir.path().join("outbox.db"), clock, 11).expect("open outbox");
    let req = EnrollRequest {
        code: "ENROLL-1".into(),
        device_name: "replan handheld".into(),
        public_key: None,
    };
    courier_core::sync::enroll(&device, server.as_ref(), &req)
        .await
        .expect("enroll");
    server.publish(EventPayload::RouteAssigned(zigzag_route()));
    sync(&device, server).await;
    device
}

/// A temp dir, a manual clock at 08:00 on the route's day, a fake server, and a device with the
/// zig-zag route pulled.
async fn field() -> (tempfile::TempDir, Arc<dyn Clock>, Arc<FakeServer>, Device) {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(DAY_START + 8 * 3_600_000));
    let server = Arc::new(FakeServer::new(clock.clone()));
    let device = device_with_route(&dir, &server, clock.clone()).await;
    (dir, clock, server, device)
}

/// A review in which a fresh proposal (solver seed `seed`) was shown and accepted.
fn accepted(device: &Device, seed: u64) -> (Review, Proposal) {
    let mut review = Review::default();
    let proposal = review.show(propose(device, seed)).clone();
    let outcome = review
        .accept(device, &proposal.inputs_digest)
        .expect("accept");
    assert!(matches!(outcome, AppendOutcome::Recorded(_)), "{outcome:?}");
    (review, proposal)
}

async fn sync(device: &Device, server: &Arc<FakeServer>) {
    let mut engine = SyncEngine::new(device.clone(), server.clone(), SyncConfig::default(), 1);
    let outcome = engine.sync_once().await;
    assert!(
        matches!(outcome, courier_core::RoundOutcome::Synced { .. }),
        "{outcome:?}"
    );
}

fn order_on_screen(device: &Device) -> Vec<StopId> {
    let view = device.route(None).expect("route").expect("a route");
    let mut stops = view.stops;
    stops.sort_by_key(|s| s.sequence);
    stops.into_iter().map(|s| s.stop_id).collect()
}

fn propose(device: &Device, seed: u64) -> Proposal {
    let view = device.route(None).expect("route").expect("a route");
    let now = now_for(&view, DAY_START + 8 * 3_600_000, 0, DEPOT).expect("valid day");
    let input = plan_input(&view, &now, |_| None);
    let mut rerouter = Rerouter::solver_only(None);
    rerouter
        .propose(&input, &Budget::iterations(50), seed)
        .expect("a route with stops plans")
}

fn replans(device: &Device) -> Vec<(String, Vec<StopId>)> {
    device
        .events()
        .expect("events")
        .into_iter()
        .filter_map(|e| match e.payload {
            EventPayload::RouteReplanned(r) => Some((r.inputs_digest, r.order)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn accept_reorders_the_route_and_undo_restores_it_as_a_second_fact() {
    let (_dir, _clock, server, device) = field().await;
    let before = order_on_screen(&device);
    assert_eq!(before[1], stop(7), "the zig-zag as planned");

    let mut review = Review::default();
    let proposal = review.show(propose(&device, 1)).clone();
    assert_eq!(
        proposal.order_before, before,
        "the current order, remaining stops"
    );
    assert_ne!(proposal.order, before, "the solver straightens the zig-zag");
    assert!(proposal.travel_s < proposal.travel_s_before);
    assert_eq!(proposal.windows_kept, 8);
    assert!(proposal.notice.is_none() && proposal.model_version.is_none());

    // A digest that is not on screen is refused and records nothing.
    let wrong = review.accept(&device, "not-the-digest");
    assert!(
        matches!(wrong, Err(ReviewError::NotOnScreen { .. })),
        "{wrong:?}"
    );
    assert!(replans(&device).is_empty());

    let outcome = review
        .accept(&device, &proposal.inputs_digest)
        .expect("accept");
    assert!(matches!(outcome, AppendOutcome::Recorded(_)), "{outcome:?}");
    assert_eq!(
        order_on_screen(&device),
        proposal.order,
        "the screen shows the new order"
    );
    assert!(review.pending().is_none());
    // Accepting twice: the proposal is no longer on screen.
    assert!(matches!(
        review.accept(&device, &proposal.inputs_digest),
        Err(ReviewError::NotOnScreen { .. })
    ));

    let outcome = review.undo(&device, &proposal.inputs_digest).expect("undo");
    assert!(matches!(outcome, AppendOutcome::Recorded(_)), "{outcome:?}");
    assert_eq!(
        order_on_screen(&device),
        before,
        "undo restores the old order"
    );
    assert!(matches!(
        review.undo(&device, &proposal.inputs_digest),
        Err(ReviewError::NothingToUndo { .. })
    ));

    let facts = replans(&device);
    assert_eq!(
        facts,
        vec![
            (proposal.inputs_digest.clone(), proposal.order.clone()),
            (undo_digest(&proposal), before.clone()),
        ]
    );

    // Both facts reach the server, once each, and the local order stays as the driver left it.
    sync(&device, &server).await;
    let on_server: Vec<_> = server
        .facts()
        .into_iter()
        .filter(|f| f.event.payload.kind() == "route_replanned")
        .collect();
    assert_eq!(on_server.len(), 2);
    assert!(on_server.iter().all(|f| f.status == PushStatus::Applied));
    assert_eq!(order_on_screen(&device), before);
}

#[tokio::test]
async fn a_replan_never_moves_a_finished_stop_and_dismiss_forgets_the_proposal() {
    let (_dir, _clock, _server, device) = field().await;
    // The first two stops of the plan are done.
    for i in [0, 7] {
        let loaded = device
            .scan_parcel(&parcel(i, 0), ScanPhase::Loaded)
            .expect("scan");
        assert!(matches!(loaded, AppendOutcome::Recorded(_)), "{loaded:?}");
        let arrived = device.arrive(stop(i), None).expect("arrive");
        assert!(matches!(arrived, AppendOutcome::Recorded(_)), "{arrived:?}");
        let delivered = doorstep_shared::event::AttemptOutcome::Delivered {
            method: doorstep_shared::event::DeliveryMethod::HandedToRecipient,
            recipient: None,
        };
        let out = device
            .record_attempt(stop(i), 1, delivered)
            .expect("deliver");
        assert!(matches!(out, AppendOutcome::Recorded(_)), "{out:?}");
    }
    let mut review = Review::default();
    let proposal = review.show(propose(&device, 2)).clone();
    assert_eq!(proposal.stops, 6, "only the remaining stops are planned");
    assert!(!proposal.order.contains(&stop(0)) && !proposal.order.contains(&stop(7)));

    assert!(!review.dismiss("another digest"));
    assert!(review.dismiss(&proposal.inputs_digest));
    assert!(review.pending().is_none());
    assert!(matches!(
        review.accept(&device, &proposal.inputs_digest),
        Err(ReviewError::NotOnScreen { .. })
    ));

    let proposal = review.show(propose(&device, 3)).clone();
    review
        .accept(&device, &proposal.inputs_digest)
        .expect("accept");
    let order = order_on_screen(&device);
    assert_eq!(
        &order[..2],
        &[stop(0), stop(7)],
        "finished stops keep their places"
    );
    assert_eq!(&order[2..], &proposal.order[..]);
}

#[tokio::test]
async fn a_replan_the_server_refuses_gives_the_route_its_planned_order_back() {
    let (_dir, _clock, server, device) = field().await;
    let planned = order_on_screen(&device);

    let (_review, proposal) = accepted(&device, 4);
    assert_eq!(order_on_screen(&device), proposal.order);

    server.poison_kind("route_replanned");
    sync(&device, &server).await;
    assert_eq!(
        order_on_screen(&device),
        planned,
        "the refused order does not stay on screen"
    );
    // The refused fact stays on the device, visible with its reason.
    assert_eq!(replans(&device).len(), 1);
    let status = device.sync_status().expect("status");
    assert_eq!(status.rejected.len(), 1, "{:?}", status.rejected);
    assert_eq!(status.rejected[0].kind, "route_replanned");
}

#[tokio::test]
async fn a_refused_replan_is_undone_but_an_accepted_later_one_stays() {
    let (_dir, _clock, server, device) = field().await;

    // The first replan reaches the server and is applied.
    let (mut review, first) = accepted(&device, 5);
    sync(&device, &server).await;
    assert_eq!(order_on_screen(&device), first.order);

    // The driver undoes it; the server refuses that second fact.
    review.undo(&device, &first.inputs_digest).expect("undo");
    assert_ne!(order_on_screen(&device), first.order);
    server.poison_kind("route_replanned");
    sync(&device, &server).await;
    assert_eq!(
        order_on_screen(&device),
        first.order,
        "the applied replan stands once the refused undo is rolled back"
    );
}

#[tokio::test]
async fn undo_is_offered_again_after_a_restart_until_it_is_used() {
    let (dir, clock, _server, device) = field().await;
    let planned = order_on_screen(&device);
    let (review, proposal) = accepted(&device, 6);
    drop((review, device));

    // The app restarts: the accepted proposal is offered for undo again, nothing is on screen.
    let device = Device::open(dir.path().join("outbox.db"), clock.clone(), 12).expect("reopen");
    let mut review = Review::restore(&device).expect("restore");
    assert_eq!(review.accepted(), Some(&proposal));
    assert!(review.pending().is_none());
    let outcome = review.undo(&device, &proposal.inputs_digest).expect("undo");
    assert!(matches!(outcome, AppendOutcome::Recorded(_)), "{outcome:?}");
    assert_eq!(order_on_screen(&device), planned);
    drop((review, device));

    // Used once, it is gone for good.
    let device = Device::open(dir.path().join("outbox.db"), clock, 13).expect("reopen");
    assert!(
        Review::restore(&device)
            .expect("restore")
            .accepted()
            .is_none()
    );
}

#[tokio::test]
async fn a_replan_the_server_refused_is_not_offered_for_undo_after_a_restart() {
    let (_dir, _clock, server, device) = field().await;
    let _accepted = accepted(&device, 7);
    server.poison_kind("route_replanned");
    sync(&device, &server).await;
    assert!(
        Review::restore(&device)
            .expect("restore")
            .accepted()
            .is_none(),
        "refused"
    );
}

#[tokio::test]
async fn the_drivers_order_survives_an_office_version_that_only_adds_or_retimes_stops() {
    let (_dir, _clock, server, device) = field().await;
    let (_review, proposal) = accepted(&device, 8);

    // Version 2: one stop's window moves and a ninth stop is added at the end.
    let mut v2 = zigzag_route();
    v2.version = 2;
    v2.stops[3].window.end_ms -= 3_600_000;
    let mut extra = v2.stops[7].clone();
    extra.stop_id = stop(8);
    extra.sequence = 9;
    extra.parcels = vec![parcel(8, 0)];
    v2.stops.push(extra);
    server.publish(EventPayload::RouteAssigned(v2));
    sync(&device, &server).await;
    let mut expected = proposal.order.clone();
    expected.push(stop(8));
    assert_eq!(
        order_on_screen(&device),
        expected,
        "the driver's order stands"
    );

    // Version 3 reorders: the office's order wins.
    let mut v3 = zigzag_route();
    v3.version = 3;
    v3.stops.reverse();
    for (i, s) in v3.stops.iter_mut().enumerate() {
        s.sequence = i as u32 + 1;
    }
    let office: Vec<StopId> = v3.stops.iter().map(|s| s.stop_id).collect();
    server.publish(EventPayload::RouteAssigned(v3));
    sync(&device, &server).await;
    let shown: Vec<StopId> = order_on_screen(&device)
        .into_iter()
        .filter(|s| *s != stop(8))
        .collect();
    assert_eq!(shown, office, "the office's new order wins");
}
