//! Order intake against the real binary (`POST /v1/orders`, `GET /v1/orders/{id}`): per-order
//! answers, versions, refusals with a field, and the integration token's reach (its own
//! shipper's orders, nothing else). Runs on SQLite and, with `DOORSTEP_TEST_DATABASE=postgres`,
//! on PostgreSQL.
#![allow(clippy::unwrap_used)]

mod harness;

use doorstep_shared::event::{GeoPoint, TimeWindow};
use doorstep_shared::order::{
    MAX_ORDERS_PER_REQUEST, Order, OrderBatchResponse, OrderParcel, OrderStatus, Recipient,
};
use doorstep_shared::{ParcelBarcode, ProblemCode};
use harness::{Api, World, db_url, integration_token};

fn order(id: &str) -> Order {
    Order {
        external_id: id.to_owned(),
        date: "2026-12-03".to_owned(),
        recipient: Recipient {
            name: "=HYPERLINK(\"x\")".to_owned(),
            phone: Some("0301234567".to_owned()),
        },
        address: "Invalidenstraße 117, 10115 Berlin".to_owned(),
        location: GeoPoint {
            lat: 52.5319,
            lon: 13.3834,
        },
        window: TimeWindow {
            start_ms: 1_796_281_200_000,
            end_ms: 1_796_288_400_000,
        },
        service_minutes: 3,
        parcels: vec![OrderParcel {
            barcode: ParcelBarcode::parse(&format!("SHP-{id}")).unwrap(),
            weight_g: 1_200,
            volume_cm3: 6_000,
        }],
        access_notes: None,
        cash_due_minor: None,
        priority: 0,
    }
}

async fn send(api: &Api, token: &str, orders: &[Order]) -> (u16, Vec<u8>) {
    let r = api
        .http
        .post(api.url("/v1/orders"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "orders": orders }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

async fn results(api: &Api, token: &str, orders: &[Order]) -> Vec<(OrderStatus, Option<u32>)> {
    let (status, body) = send(api, token, orders).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let r: OrderBatchResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(r.results.len(), orders.len(), "one result per order");
    for (res, o) in r.results.iter().zip(orders) {
        assert_eq!(
            res.external_id, o.external_id,
            "results in the batch's order"
        );
    }
    r.results.iter().map(|r| (r.status, r.version)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_created_once_versioned_on_change_and_refused_with_the_field() {
    let w = World::new();
    let token = integration_token(&db_url(&w.db), "Parcelhaus");
    let (a, b) = (order("A-1"), order("A-2"));

    assert_eq!(
        results(&w.api, &token, &[a.clone(), b.clone()]).await,
        vec![
            (OrderStatus::Created, Some(1)),
            (OrderStatus::Created, Some(1))
        ]
    );
    // The same batch again: nothing changes.
    assert_eq!(
        results(&w.api, &token, &[a.clone(), b.clone()]).await,
        vec![
            (OrderStatus::Duplicate, Some(1)),
            (OrderStatus::Duplicate, Some(1))
        ]
    );
    // New content before dispatch: the next version; a bad order beside it is refused alone.
    let mut moved = a.clone();
    moved.window.end_ms += 3_600_000;
    let mut bad = order("A-3");
    bad.location.lat = 95.0;
    let (status, body) = send(&w.api, &token, &[moved.clone(), bad]).await;
    assert_eq!(status, 200);
    let r: OrderBatchResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (r.results[0].status, r.results[0].version),
        (OrderStatus::Updated, Some(2))
    );
    assert_eq!(r.results[1].status, OrderStatus::Rejected);
    assert_eq!(r.results[1].code, Some(ProblemCode::InvalidOrder));
    let detail = r.results[1].detail.clone().unwrap();
    assert!(detail.starts_with("location.lat"), "{detail}");

    // One external id twice in a batch with different content: the second is refused.
    let mut again = b.clone();
    again.address = "Chausseestraße 1, Berlin".to_owned();
    assert_eq!(
        results(
            &w.api,
            &token,
            &[order("A-4"), again.clone(), again.clone(), b.clone()]
        )
        .await,
        vec![
            (OrderStatus::Created, Some(1)),
            (OrderStatus::Updated, Some(2)),
            (OrderStatus::Duplicate, Some(2)),
            (OrderStatus::Rejected, None),
        ]
    );

    // Read back verbatim: the phone keeps its leading zero, the formula-like name is a name.
    let r = w.api.get(Some(&token), "/v1/orders/A-1").await;
    assert_eq!(r.status, 200);
    let view: serde_json::Value = r.json();
    assert_eq!(view["version"], 2);
    let stored: Order = serde_json::from_value(view["order"].clone()).unwrap();
    assert_eq!(stored, moved);
    assert_eq!(stored.recipient.phone.as_deref(), Some("0301234567"));
    assert_eq!(stored.recipient.name, "=HYPERLINK(\"x\")");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integration_token_reaches_its_own_shippers_orders_and_nothing_else() {
    let w = World::new();
    let url = db_url(&w.db);
    let ours = integration_token(&url, "Parcelhaus");
    let theirs = integration_token(&url, "Boxwerk");
    results(&w.api, &ours, &[order("X-1")]).await;

    // Another shipper neither sees our order nor collides with its external id.
    assert_eq!(w.api.get(Some(&theirs), "/v1/orders/X-1").await.status, 404);
    assert_eq!(
        results(&w.api, &theirs, &[order("X-1")]).await,
        vec![(OrderStatus::Created, Some(1))]
    );
    // A second token of the same shipper reaches the same orders.
    let ours_too = integration_token(&url, "Parcelhaus");
    assert_eq!(
        w.api.get(Some(&ours_too), "/v1/orders/X-1").await.status,
        200
    );

    // No dispatcher or device endpoint takes an integration token, and no other token works
    // for orders.
    for path in [
        "/v1/dispatch/couriers",
        "/v1/dispatch/fleet",
        "/v1/sync/pull?cursor=0",
    ] {
        let r = w.api.get(Some(&ours), path).await;
        r.problem(401, "unauthorized");
    }
    let (status, _) = send(&w.api, &w.api.dispatcher_token, &[order("X-2")]).await;
    assert_eq!(status, 401);
    let d = w.device(0, 3).await;
    let (status, _) = send(&w.api, &d.token, &[order("X-2")]).await;
    assert_eq!(status, 401);
    assert_eq!(w.api.get(None, "/v1/orders/X-1").await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_the_limit_or_not_json_is_refused_whole() {
    let w = World::new();
    let token = integration_token(&db_url(&w.db), "Parcelhaus");
    let many: Vec<Order> = (0..=MAX_ORDERS_PER_REQUEST)
        .map(|i| order(&format!("B-{i}")))
        .collect();
    let (status, body) = send(&w.api, &token, &many).await;
    assert_eq!(status, 413);
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["code"], "payload_too_large");
    let r = w
        .api
        .http
        .post(w.api.url("/v1/orders"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"orders\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // Nothing of the refused batch was kept.
    assert_eq!(w.api.get(Some(&token), "/v1/orders/B-0").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_senders_of_one_new_order_create_it_once() {
    let w = World::new();
    let token = integration_token(&db_url(&w.db), "Parcelhaus");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (api, token) = (w.api.clone(), token.clone());
            tokio::spawn(async move { results(&api, &token, &[order("R-1")]).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.extend(t.await.unwrap());
    }
    let created = statuses
        .iter()
        .filter(|s| **s == (OrderStatus::Created, Some(1)))
        .count();
    let duplicates = statuses
        .iter()
        .filter(|s| **s == (OrderStatus::Duplicate, Some(1)))
        .count();
    assert_eq!((created, duplicates), (1, 7), "{statuses:?}");
}
