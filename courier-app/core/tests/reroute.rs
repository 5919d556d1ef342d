//! Rerouting with the real model and runtime (installed by scripts/setup.sh into .venv, or
//! at $ORT_DYLIB_PATH): determinism, the replan event, and the integrity checks — a wrong input
//! shape, a corrupted model, a manifest hash mismatch — each with a clear error and a working
//! solver-only fallback. The missing-runtime case is `reroute_no_runtime.rs`.

mod reroute_support;

use std::path::PathBuf;
use std::sync::Arc;

use courier_core::outbox::{AppendOutcome, Identity};
use courier_core::reroute::features::WIDTH;
use courier_core::reroute::{ModelError, Proposal, Rerouter, accept_replan, onnx};
use courier_core::{Device, ManualClock};
use doorstep_shared::{CourierId, DeviceId, EventPayload};
use doorstep_solver::Budget;
use reroute_support::*;

/// The runtime the project's setup installs; a clear failure when setup did not run.
fn runtime() -> PathBuf {
    let path = onnx::locate_runtime(&root());
    assert!(
        path.is_file(),
        "ONNX Runtime not found at {} — run scripts/setup.sh (creates .venv with \
         onnxruntime==1.31.1) or set ORT_DYLIB_PATH",
        path.display()
    );
    path
}

fn loaded() -> Rerouter {
    let (r, notice) = Rerouter::load(&models(), &runtime());
    assert!(
        notice.is_none(),
        "the committed model must load: {notice:?}"
    );
    r
}

fn propose(r: &mut Rerouter, seed: u64) -> Proposal {
    let sc = route(seed);
    r.propose(&sc.input, &Budget::iterations(10), seed)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"))
}

fn assert_fallback(dir: &std::path::Path, seed: u64) -> ModelError {
    let (mut r, notice) = Rerouter::load(dir, &runtime());
    let Some(notice) = notice else {
        panic!("seed {seed}: a broken model must give a notice");
    };
    let p = propose(&mut r, seed);
    assert_eq!(p.model_version, None, "seed {seed}");
    assert_eq!(p.notice.as_ref(), Some(&notice), "seed {seed}");
    assert_eq!(p.order.len(), route(seed).input.stops.len(), "seed {seed}");
    notice.cause
}

#[test]
fn the_model_loads_and_proposals_are_deterministic_for_a_seed() {
    let mut r = loaded();
    for seed in [1u64, 2, 3] {
        let (a, b) = (propose(&mut r, seed), propose(&mut r, seed));
        assert_eq!(a, b, "seed {seed}: same inputs and seed, same proposal");
        assert!(
            a.model_version
                .as_deref()
                .is_some_and(|v| v.starts_with("delivery_success@"))
        );
        let gain = a.expected_gain.unwrap_or(f32::NAN);
        assert!(
            gain.is_finite(),
            "seed {seed}: the model's expected gain is reported"
        );
        assert_eq!(a.inputs_digest.len(), 64);
        assert!(a.windows_kept <= a.stops);
    }
}

#[test]
fn batched_predictions_are_probabilities() {
    let mut r = loaded();
    let sc = route(5);
    let Some(Ok(grid)) = r.score(&sc.input) else {
        panic!("seed 5: scoring failed");
    };
    assert_eq!(grid.p.len(), grid.grid.stops * grid.grid.slots);
    assert!(grid.p.iter().all(|p| (0.0..=1.0).contains(p)));
}

#[test]
fn rows_of_the_wrong_width_are_refused_at_inference() {
    let mut r = loaded();
    let rows = vec![0.5f32; WIDTH * 3 + 1];
    let got = r.predict(&rows);
    assert!(
        matches!(got, Some(Err(ModelError::InputShape { .. }))),
        "{got:?}"
    );
}

#[test]
fn a_model_with_the_wrong_input_shape_falls_back() {
    let dir = copy_models();
    let bytes = std::fs::read(models().join("fixtures/wrong_width.onnx"))
        .unwrap_or_else(|e| panic!("fixture (models/make_fixtures.py): {e}"));
    std::fs::write(dir.path().join("delivery_success.onnx"), &bytes)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut m = manifest(dir.path());
    m["sha256"] = sha256_hex(&bytes).into();
    write_manifest(dir.path(), &m);
    let cause = assert_fallback(dir.path(), 21);
    assert!(
        matches!(&cause, ModelError::InputShape { got, .. } if got.contains('9')),
        "{cause:?}"
    );
}

#[test]
fn a_corrupted_model_file_falls_back() {
    let dir = copy_models();
    let path = dir.path().join("delivery_success.onnx");
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
    bytes.truncate(bytes.len() / 3);
    for b in bytes.iter_mut().skip(8).step_by(97) {
        *b ^= 0x5A;
    }
    std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let mut m = manifest(dir.path());
    m["sha256"] = sha256_hex(&bytes).into();
    write_manifest(dir.path(), &m);
    let cause = assert_fallback(dir.path(), 22);
    assert!(matches!(cause, ModelError::ModelLoad { .. }), "{cause:?}");
}

#[test]
fn a_manifest_hash_mismatch_falls_back() {
    let dir = copy_models();
    let path = dir.path().join("delivery_success.onnx");
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let cause = assert_fallback(dir.path(), 23);
    assert!(
        matches!(cause, ModelError::HashMismatch { .. }),
        "{cause:?}"
    );
}

#[test]
fn a_missing_model_or_bad_manifest_falls_back() {
    let dir = copy_models();
    std::fs::remove_file(dir.path().join("delivery_success.onnx"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        assert_fallback(dir.path(), 24),
        ModelError::ModelMissing { .. }
    ));
    let dir = copy_models();
    let mut m = manifest(dir.path());
    m["input"]["features"][0] = "minute".into();
    write_manifest(dir.path(), &m);
    assert!(matches!(
        assert_fallback(dir.path(), 25),
        ModelError::FeatureSchema { .. }
    ));
}

#[test]
fn accepting_a_proposal_records_a_route_replanned_fact() {
    let mut r = loaded();
    let p = propose(&mut r, 31);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let device = Device::open(
        dir.path().join("outbox.db"),
        Arc::new(ManualClock::new(1_700_000_000_000)),
        31,
    )
    .unwrap_or_else(|e| panic!("seed 31: {e}"));
    let identity = Identity {
        device_id: DeviceId(uuid::Uuid::from_u128(31)),
        courier_id: CourierId(uuid::Uuid::from_u128(32)),
        token: "t".into(),
    };
    device
        .set_identity(&identity)
        .unwrap_or_else(|e| panic!("{e}"));
    let outcome = accept_replan(&device, &p).unwrap_or_else(|e| panic!("seed 31: {e}"));
    assert!(
        matches!(outcome, AppendOutcome::Recorded(_)),
        "seed 31: {outcome:?}"
    );
    let events = device.events().unwrap_or_else(|e| panic!("{e}"));
    let Some(EventPayload::RouteReplanned(e)) = events.last().map(|e| &e.payload) else {
        panic!("seed 31: expected a RouteReplanned event, got {events:?}");
    };
    assert_eq!(e.order, p.order);
    assert_eq!(e.model_version, p.model_version);
    assert_eq!(e.inputs_digest, p.inputs_digest);
}

/// Scoring only the slots a stop can be served in gives the full grid's probability at every
/// time from the stop's window opening on (the only times the solver and schedule read).
#[test]
fn scoring_from_each_stops_first_slot_matches_the_full_grid() {
    use courier_core::reroute::plan::{self, Grid, SuccessGrid};
    let mut r = loaded();
    let mut skipped = 0;
    for seed in [3, 11] {
        let sc = route(seed);
        let input = &sc.input;
        let inst = plan::instance(input).expect("valid route");
        let grid = Grid::for_input(input);
        let dense = r
            .predict(&grid.rows(input))
            .and_then(Result::ok)
            .map(|p| SuccessGrid {
                grid: grid.clone(),
                p,
            })
            .expect("full grid scores");
        let sparse = r.score(input).and_then(Result::ok).expect("grid scores");
        let first = grid.first_slots(input);
        skipped += grid.rows(input).len() - grid.rows_from(input, &first).len();
        for i in 0..input.stops.len() {
            let mut t = inst.earliest[i + 1];
            while t <= input.day_end_s + 3600 {
                assert_eq!(
                    dense.at(i, t),
                    sparse.at(i, t),
                    "seed {seed}, stop {i}, t {t}"
                );
                t += 397;
            }
        }
    }
    assert!(skipped > 0, "windowed stops should skip their early slots");
}
