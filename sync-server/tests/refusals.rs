//! Every refusal the server sends is `application/problem+json` with a stable `code`, whoever
//! produced it: the handlers, the extractors, or the router itself (unknown path, wrong
//! method). The routes are read from the router's source (`src/http/mod.rs`, `src/http/blobs.rs`),
//! so a route added there is walked here without editing this file.

mod harness;

use axum::body::Body;
use axum::http::{Method, Request};
use doorstep_server::blobs::FsBlobStore;
use doorstep_server::blobs::uploads::Uploads;
use doorstep_server::clock::ManualClock;
use doorstep_server::seed::{DemoSeed, SeedOptions, seed_demo};
use doorstep_server::service::App;
use doorstep_server::store::Store;
use doorstep_server::store::sqlite::SqliteStore;
use doorstep_shared::BlobDigest;
use doorstep_shared::event::GeoPoint;
use doorstep_shared::protocol::{EnrollRequest, MAX_UPLOAD_CHUNK_BYTES};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tower::ServiceExt;

const T0: u64 = 1_780_000_000_000;

/// One route as the router declares it: its path template and the methods it answers.
#[derive(Debug, Clone)]
struct Route {
    path: String,
    methods: Vec<Method>,
}

impl Route {
    fn has_params(&self) -> bool {
        self.path.contains('{')
    }

    /// The path with every `{param}` replaced by `value` (already percent-encoded).
    fn with_params(&self, value: &str) -> String {
        let mut out = String::new();
        let mut rest = self.path.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = rest[open..].find('}').expect("closed path parameter") + open;
            out.push_str(value);
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Routes that need a bearer token: everything under `/v1/` but enrollment (which
    /// authenticates with the one-time code in its body).
    fn protected(&self) -> bool {
        self.path.starts_with("/v1/") && self.path != "/v1/enroll"
    }

    fn dispatcher(&self) -> bool {
        self.path.starts_with("/v1/dispatch/") || self.path.starts_with("/v1/blobs")
    }
}

fn method_calls(expr: &str) -> Vec<Method> {
    let mut out = Vec::new();
    for (name, method) in [
        ("get", Method::GET),
        ("post", Method::POST),
        ("put", Method::PUT),
        ("patch", Method::PATCH),
        ("delete", Method::DELETE),
        ("head", Method::HEAD),
    ] {
        let call = format!("{name}(");
        let found = expr.match_indices(&call).any(|(i, _)| {
            expr[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
        });
        if found {
            out.push(method);
        }
    }
    out
}

/// Every `.route("path", methods)` call in `source`.
fn routes_in(source: &str) -> Vec<Route> {
    let mut out = Vec::new();
    for (start, _) in source.match_indices(".route(") {
        let args_start = start + ".route(".len();
        let mut depth = 1usize;
        let mut end = args_start;
        for (i, c) in source[args_start..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = args_start + i;
                break;
            }
        }
        let args = &source[args_start..end];
        let q1 = args.find('"').expect("a path literal");
        let q2 = args[q1 + 1..].find('"').expect("a closed path literal") + q1 + 1;
        let path = args[q1 + 1..q2].to_owned();
        let methods = method_calls(&args[q2 + 1..]);
        assert!(!methods.is_empty(), "no method found for {path}: {args}");
        out.push(Route { path, methods });
    }
    out
}

fn all_routes() -> Vec<Route> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut routes = Vec::new();
    for file in ["mod.rs", "blobs.rs"] {
        let source = std::fs::read_to_string(dir.join(file)).expect("router source");
        routes.extend(routes_in(&source));
    }
    // A parser that silently found nothing would make every walk below pass.
    assert!(routes.len() >= 30, "only {} routes found", routes.len());
    for must in [
        "/v1/sync/push",
        "/v1/uploads/{id}",
        "/v1/dispatch/live/ticket",
    ] {
        assert!(routes.iter().any(|r| r.path == must), "{must} not found");
    }
    routes
}

struct World {
    router: axum::Router,
    blob_router: axum::Router,
    seed: DemoSeed,
    device_token: String,
    integration_token: String,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn world() -> World {
    let clock = Arc::new(ManualClock::new(T0));
    let store = SqliteStore::open_in_memory().expect("store");
    let app = Arc::new(App::new(Arc::new(store), clock));
    let seed = seed_demo(
        &app,
        &SeedOptions {
            couriers: 1,
            stops_per_route: 2,
            seed: 1,
            day: "2026-06-01".into(),
            day_start_ms: T0,
            depot: GeoPoint {
                lat: 52.5,
                lon: 13.4,
            },
        },
    )
    .await
    .expect("seed");
    let enrolled = app
        .enroll(EnrollRequest {
            code: seed.couriers[0].enrollment_code.clone(),
            device_name: "refusal walker".into(),
            public_key: None,
        })
        .await
        .expect("enroll");
    let integration = doorstep_server::auth::new_integration_token(&mut rand::rng());
    app.store
        .create_integration(
            doorstep_shared::ShipperId(uuid::Uuid::now_v7()),
            "refusal walker",
            &integration.hash,
        )
        .expect("integration token");
    let ui = tempfile::tempdir().expect("ui dir");
    let blobs = tempfile::tempdir().expect("blob dir");
    let router = doorstep_server::http::router_with_ui(app.clone(), ui.path().to_owned());
    let uploads = Arc::new(Uploads::with_sessions(
        Arc::new(FsBlobStore::new(blobs.path())),
        60_000,
        app.store.clone(),
    ));
    let blob_router = doorstep_server::http::blobs::router(app, uploads);
    World {
        router,
        blob_router,
        seed,
        device_token: enrolled.token,
        integration_token: integration.plain,
        _dirs: (ui, blobs),
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    allow: Option<String>,
    offset: Option<u64>,
    location: Option<String>,
    body: Vec<u8>,
}

async fn call(router: &axum::Router, req: Request<Body>) -> Answer {
    let res = router.clone().oneshot(req).await.expect("router answers");
    let h = |n: &str| {
        res.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (content_type, allow, offset, location) = (
        h("content-type").unwrap_or_default(),
        h("allow"),
        h("upload-offset").and_then(|s| s.parse().ok()),
        h("location"),
    );
    let status = res.status().as_u16();
    let body = res
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Answer {
        status,
        content_type,
        allow,
        offset,
        location,
        body,
    }
}

/// Asserts a problem answer with one of `codes` (each with its own status) and returns the code.
#[track_caller]
fn assert_problem(a: &Answer, codes: &[(u16, &str)], what: &str) -> String {
    let text = String::from_utf8_lossy(&a.body);
    assert_eq!(
        a.content_type, "application/problem+json",
        "{what}: {} {text}",
        a.status
    );
    let v: serde_json::Value = serde_json::from_slice(&a.body)
        .unwrap_or_else(|e| panic!("{what}: problem body does not parse ({e}): {text}"));
    let code = v["code"].as_str().unwrap_or_default().to_owned();
    assert!(
        codes.iter().any(|(s, c)| *s == a.status && *c == code),
        "{what}: expected one of {codes:?}, got {} {text}",
        a.status
    );
    assert_eq!(v["status"].as_u64(), Some(u64::from(a.status)), "{what}");
    code
}

fn request(method: Method, uri: &str, headers: &[(&str, String)], body: Vec<u8>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    b.body(Body::from(body)).expect("request")
}

impl World {
    fn token_for(&self, route: &Route) -> String {
        if route.dispatcher() {
            format!("Bearer {}", self.seed.dispatcher_token)
        } else if route.path.starts_with("/v1/orders") {
            format!("Bearer {}", self.integration_token)
        } else {
            format!("Bearer {}", self.device_token)
        }
    }

    fn stop(&self) -> String {
        self.seed.couriers[0].stops[0].to_string()
    }
}

/// A body case: its name, the request headers, the body and the expected (status, code).
type BodyCase<'a> = (&'a str, Vec<(&'a str, String)>, Vec<u8>, (u16, &'a str));

const NIL: &str = "00000000-0000-0000-0000-000000000000";
/// Routes whose POST takes no body at all.
const NO_BODY_POSTS: &[&str] = &["/v1/dispatch/live/ticket"];
/// Larger than every body limit of the server (push: 4 MiB on the wire).
const OVERSIZED: usize = 5 * 1024 * 1024;

#[tokio::test]
async fn framework_refusals_are_problems_with_stable_codes() {
    let w = world().await;
    let routes = all_routes();

    // Unknown paths, including the dashboard's static files and a prefix of a real route.
    for (method, uri) in [
        (Method::GET, "/nope"),
        (Method::GET, "/v1/nope"),
        (Method::POST, "/v1/dispatch/stops"),
        (Method::GET, "/assets/missing.js"),
    ] {
        let what = format!("{method} {uri}");
        let a = call(&w.router, request(method, uri, &[], Vec::new())).await;
        assert_problem(&a, &[(404, "not_found")], &what);
    }

    // A method the route does not answer: 405 with the allowed ones in `Allow`.
    for route in &routes {
        let uri = route.with_params(NIL);
        for method in [Method::DELETE, Method::PUT, Method::POST, Method::PATCH] {
            if route.methods.contains(&method) {
                continue;
            }
            let what = format!("{method} {}", route.path);
            let a = call(&w.router, request(method, &uri, &[], Vec::new())).await;
            assert_problem(&a, &[(405, "method_not_allowed")], &what);
            assert!(a.allow.is_some(), "{what}: no Allow header");
        }
    }

    // Path parameters that do not decode, or are not ids, with valid credentials.
    for route in routes.iter().filter(|r| r.has_params()) {
        for method in &route.methods {
            let headers = [
                ("authorization", w.token_for(route)),
                ("content-type", "application/json".to_owned()),
                ("idempotency-key", "k-1".to_owned()),
                ("upload-offset", "0".to_owned()),
                ("upload-checksum", format!("sha256 {}", "0".repeat(64))),
            ];
            for (param, expected) in [
                ("%FF", &[(400, "malformed_request")][..]),
                (
                    "not-an-id",
                    &[(404, "not_found"), (404, "upload_not_found")][..],
                ),
            ] {
                let what = format!("{method} {} with {param}", route.path);
                let uri = route.with_params(param);
                let a = call(
                    &w.router,
                    request(method.clone(), &uri, &headers, b"{}".to_vec()),
                )
                .await;
                if *method == Method::HEAD && a.body.is_empty() {
                    assert_eq!(a.content_type, "application/problem+json", "{what}");
                    assert!(
                        expected.iter().any(|(s, _)| *s == a.status),
                        "{what}: {a:?}"
                    );
                } else {
                    assert_problem(&a, expected, &what);
                }
            }
        }
    }

    // Query strings that do not deserialise.
    let device_events = format!("/v1/dispatch/devices/{NIL}/events?after_seq=zz");
    for (uri, dispatcher) in [
        ("/v1/sync/pull?cursor=x", false),
        ("/v1/dispatch/escalations?all=banana", true),
        (device_events.as_str(), true),
        ("/v1/dispatch/metrics/dashboard?buckets=-1", true),
    ] {
        let token = if dispatcher {
            format!("Bearer {}", w.seed.dispatcher_token)
        } else {
            format!("Bearer {}", w.device_token)
        };
        let a = call(
            &w.router,
            request(Method::GET, uri, &[("authorization", token)], Vec::new()),
        )
        .await;
        assert_problem(&a, &[(400, "malformed_request")], uri);
    }

    // JSON bodies: wrong or missing content type, missing, invalid or mistyped JSON, too large.
    let json_posts: Vec<&Route> = routes
        .iter()
        .filter(|r| r.methods.contains(&Method::POST) && !NO_BODY_POSTS.contains(&r.path.as_str()))
        .collect();
    assert!(json_posts.len() >= 9, "{json_posts:?}");
    let oversized = vec![b' '; OVERSIZED];
    for route in json_posts {
        let uri = route.with_params(&w.stop());
        let auth = ("authorization", w.token_for(route));
        let key = ("idempotency-key", "k-2".to_owned());
        let json = ("content-type", "application/json".to_owned());
        let cases: [BodyCase; 6] = [
            (
                "text/plain",
                vec![
                    auth.clone(),
                    key.clone(),
                    ("content-type", "text/plain".into()),
                ],
                b"{}".to_vec(),
                (415, "unsupported_media_type"),
            ),
            (
                "no content type",
                vec![auth.clone(), key.clone()],
                Vec::new(),
                (415, "unsupported_media_type"),
            ),
            (
                "empty body",
                vec![auth.clone(), key.clone(), json.clone()],
                Vec::new(),
                (400, "malformed_request"),
            ),
            (
                "invalid JSON",
                vec![auth.clone(), key.clone(), json.clone()],
                b"{not json".to_vec(),
                (400, "malformed_request"),
            ),
            (
                "mistyped JSON",
                vec![auth.clone(), key.clone(), json.clone()],
                b"[]".to_vec(),
                (400, "malformed_request"),
            ),
            (
                "oversized",
                vec![auth.clone(), key.clone(), json.clone()],
                oversized.clone(),
                (413, "payload_too_large"),
            ),
        ];
        for (case, headers, body, expected) in cases {
            let what = format!("POST {} ({case})", route.path);
            let a = call(&w.router, request(Method::POST, &uri, &headers, body)).await;
            assert_problem(&a, &[expected], &what);
        }
    }
}

#[tokio::test]
async fn an_upload_chunk_over_the_documented_limit_is_a_413_problem() {
    let w = world().await;
    let size = 2 * MAX_UPLOAD_CHUNK_BYTES + 1;
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let auth = ("authorization", format!("Bearer {}", w.device_token));
    let create = serde_json::json!({"digest": BlobDigest::of(&data), "size": size});
    let created = call(
        &w.blob_router,
        request(
            Method::POST,
            "/v1/uploads",
            &[auth.clone(), ("content-type", "application/json".into())],
            create.to_string().into_bytes(),
        ),
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
    let loc = created.location.clone().expect("location");
    let patch = |offset: usize, chunk: &[u8]| {
        request(
            Method::PATCH,
            &loc,
            &[
                auth.clone(),
                ("upload-offset", offset.to_string()),
                (
                    "upload-checksum",
                    format!("sha256 {}", hex::encode(Sha256::digest(chunk))),
                ),
            ],
            chunk.to_vec(),
        )
    };

    let over = call(
        &w.blob_router,
        patch(0, &data[..MAX_UPLOAD_CHUNK_BYTES + 1]),
    )
    .await;
    assert_problem(&over, &[(413, "payload_too_large")], "chunk over the limit");

    // Exactly the limit is accepted (the old, implicit limit was 2 MiB), and the upload
    // completes in chunks of at most the limit.
    let mut offset = 0;
    while offset < size {
        let end = (offset + MAX_UPLOAD_CHUNK_BYTES).min(size);
        let a = call(&w.blob_router, patch(offset, &data[offset..end])).await;
        assert_eq!(a.status, 204, "chunk at {offset}: {a:?}");
        offset = a.offset.expect("upload-offset") as usize;
        assert_eq!(offset, end);
    }
}

/// Over a real socket the client writes the whole chunk before it reads the answer: it must get
/// the documented 413 problem, not a reset connection.
#[tokio::test]
async fn the_real_server_answers_an_oversized_chunk_with_a_413_problem() {
    let w = harness::World::with_blob_dir(true);
    let d = w.device(0, 5).await;
    let size = MAX_UPLOAD_CHUNK_BYTES + 1;
    let data = vec![7u8; size];
    let client = reqwest::Client::new();
    let created = client
        .post(w.api.url("/v1/uploads"))
        .bearer_auth(&d.token)
        .json(&serde_json::json!({"digest": BlobDigest::of(&data), "size": size}))
        .send()
        .await
        .expect("create upload");
    assert_eq!(created.status().as_u16(), 201);
    let loc = created
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("location")
        .to_owned();
    let res = client
        .patch(w.api.url(&loc))
        .bearer_auth(&d.token)
        .header("upload-offset", "0")
        .header(
            "upload-checksum",
            format!("sha256 {}", hex::encode(Sha256::digest(&data))),
        )
        .body(data)
        .send()
        .await
        .expect("the server answers the oversized chunk");
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = res.bytes().await.expect("body").to_vec();
    let a = harness::Resp {
        status,
        content_type,
        body,
    };
    a.problem(413, "payload_too_large");
}

#[tokio::test]
async fn every_protected_route_authenticates_before_it_validates_anything() {
    let w = world().await;
    let protected: Vec<Route> = all_routes().into_iter().filter(Route::protected).collect();
    assert!(protected.len() >= 25, "{protected:?}");
    let garbage_query = "?cursor=x&wait_ms=-1&all=banana&after_seq=zz&buckets=-1&ticket=a&ticket=b";
    let small = b"\xff{not json".to_vec();
    let oversized = vec![0xffu8; OVERSIZED];
    let mut checked = 0;
    for route in &protected {
        for method in &route.methods {
            for param in ["%FF", NIL] {
                let uri = format!("{}{garbage_query}", route.with_params(param));
                for auth in [None, Some("Bearer not-a-token"), Some("Basic Zm9vOmJhcg==")] {
                    let mut headers = vec![
                        ("content-type", "text/garbage".to_owned()),
                        ("content-encoding", "bogus".to_owned()),
                        ("upload-offset", "nope".to_owned()),
                        ("upload-checksum", "md5 zz".to_owned()),
                    ];
                    if let Some(a) = auth {
                        headers.push(("authorization", a.to_owned()));
                    }
                    let bodies = if auth.is_none() {
                        vec![small.clone(), oversized.clone()]
                    } else {
                        vec![small.clone()]
                    };
                    for body in bodies {
                        let what =
                            format!("{method} {uri} auth {auth:?} body {} bytes", body.len());
                        let a =
                            call(&w.router, request(method.clone(), &uri, &headers, body)).await;
                        if *method == Method::HEAD && a.body.is_empty() {
                            assert_eq!(a.status, 401, "{what}");
                            assert_eq!(a.content_type, "application/problem+json", "{what}");
                        } else {
                            assert_problem(&a, &[(401, "unauthorized")], &what);
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked >= 25 * 8, "{checked} requests");
}
