//! Two `serve` processes on one PostgreSQL database are one service: a device long-polling one
//! replica is woken by an office change committed through the other.
//! `cargo test -p doorstep-server --test replicas`

mod harness;

use doorstep_shared::dashboard::LiveEvent;
use doorstep_shared::event::{EventPayload, TimeWindow};
use harness::live_stream::LiveStream;
use harness::{Api, Device, Encoding, TestServer, demo_seed_url};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_on_one_replica_is_woken_by_a_change_made_through_another() {
    let url = doorstep_test_postgres::TestCluster::shared().fresh_database();
    let seed = demo_seed_url(&url);
    let a = TestServer::start_url(&url, &[]);
    let b = TestServer::start_url(&url, &[]);
    let api_a = Api::new(&a.base, &seed.dispatcher_token);
    let api_b = Api::new(&b.base, &seed.dispatcher_token);
    let courier = &seed.couriers[0];
    let device = api_a.enroll(&courier.enrollment_code, "handheld").await;

    let mut cursor = 0;
    loop {
        let p = api_b.pull(&device.token, cursor, 0).await;
        cursor = p.cursor;
        if !p.has_more {
            break;
        }
    }
    assert!(
        cursor > 0,
        "replica B serves the route assignment made before it started"
    );

    let waiting = {
        let (api, token) = (api_b.clone(), device.token.clone());
        tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(20), api.pull(&token, cursor, 30_000)).await
        })
    };
    let stop = courier.stops[1];
    let window = TimeWindow {
        start_ms: harness::now_ms() + 3_600_000,
        end_ms: harness::now_ms() + 7_200_000,
    };
    let r = api_a
        .stop_command(
            stop,
            "reschedule",
            &json!({ "window": window }),
            Some("replica-1"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    let pulled = waiting
        .await
        .expect("poller")
        .expect("replica B's long-poll was not woken within 20 s (it waits up to 30 s)");
    let rescheduled = pulled.changes.iter().any(|c| {
        matches!(&c.payload, EventPayload::StopRescheduled(e) if e.stop_id == stop && e.window == window)
    });
    assert!(
        rescheduled,
        "B's pull carries the change made through A: {pulled:?}"
    );
    assert_eq!(
        api_b.stop(stop).await.view.window,
        Some(window),
        "B reads A's write"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_stream_ticket_from_one_replica_opens_the_stream_on_another_once() {
    let url = doorstep_test_postgres::TestCluster::shared().fresh_database();
    let seed = demo_seed_url(&url);
    let a = TestServer::start_url(&url, &[]);
    let b = TestServer::start_url(&url, &[]);
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let ticket: doorstep_shared::dashboard::LiveTicket = http
        .post(format!("{}/v1/dispatch/live/ticket", a.base))
        .bearer_auth(&seed.dispatcher_token)
        .send()
        .await
        .expect("ticket")
        .json()
        .await
        .expect("ticket json");
    let open = || {
        http.get(format!(
            "{}/v1/dispatch/live?ticket={}",
            b.base, ticket.ticket
        ))
        .send()
    };
    let first = open().await.expect("stream on B");
    assert_eq!(first.status(), 200, "B redeems A's ticket");
    assert!(
        first
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"))
    );
    drop(first);
    let again = open().await.expect("second try");
    assert_eq!(
        again.status(),
        401,
        "a ticket opens one stream, on any replica"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_on_one_replica_sees_pushes_and_commands_handled_by_another() {
    let url = doorstep_test_postgres::TestCluster::shared().fresh_database();
    let seed = demo_seed_url(&url);
    let a = TestServer::start_url(&url, &[]);
    let b = TestServer::start_url(&url, &[]);
    let api_a = Api::new(&a.base, &seed.dispatcher_token);
    let mut on_b = LiveStream::open(&b.base, &seed.dispatcher_token).await;
    let courier = &seed.couriers[0];
    let enrolled = api_a.enroll(&courier.enrollment_code, "handheld").await;
    let mut device = Device::new(enrolled.device_id, enrolled.courier_id, enrolled.token, 7);
    let stop = courier.stops[0];

    let events = harness::delivery_sequence(&mut device, stop, "PKG-LIVE");
    let pushed = api_a
        .push(&device.token, &device.request(events), Encoding::Identity)
        .await;
    assert_eq!(pushed.last_applied_seq, 4);
    let answered_applied = pushed
        .results
        .iter()
        .filter(|r| r.status == doorstep_shared::protocol::PushStatus::Applied)
        .count() as u32;
    assert!(answered_applied > 0, "{pushed:?}");
    let seen = on_b
        .wait_for(
            Duration::from_secs(20),
            |e| matches!(e, LiveEvent::Push { device_id, .. } if *device_id == device.id),
        )
        .await;
    let LiveEvent::Push {
        applied,
        stops,
        last_applied_seq,
        ..
    } = seen
    else {
        unreachable!("matched a push above")
    };
    assert_eq!(
        (applied, stops, last_applied_seq),
        (answered_applied, vec![stop], 4),
        "B shows A's push as it was answered"
    );

    let other = courier.stops[2];
    let r = api_a
        .stop_command(
            other,
            "reschedule",
            &json!({ "window": TimeWindow { start_ms: harness::now_ms() + 3_600_000, end_ms: harness::now_ms() + 7_200_000 } }),
            Some("replica-live-1"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    on_b.wait_for(
        Duration::from_secs(20),
        |e| matches!(e, LiveEvent::Office { stop_id: Some(s), .. } if *s == other),
    )
    .await;
}
