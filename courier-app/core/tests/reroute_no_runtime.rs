//! Without ONNX Runtime (a path that does not exist, then a file that is not a library), the
//! rerouter says why and still proposes a valid order with the solver alone. Its own test
//! binary: the runtime, once loaded, stays loaded for the process.

mod reroute_support;

use courier_core::reroute::{ModelError, Rerouter};
use doorstep_solver::Budget;
use reroute_support::{models, route};

fn assert_solver_only(rerouter: &mut Rerouter, seed: u64) {
    let sc = route(seed);
    let p = rerouter
        .propose(&sc.input, &Budget::iterations(10), seed)
        .unwrap_or_else(|e| panic!("seed {seed}: fallback must still plan: {e}"));
    assert_eq!(p.model_version, None, "seed {seed}");
    assert!(p.notice.is_some(), "seed {seed}: the app must get a notice");
    assert_eq!(p.expected_gain, None);
    let mut got = p.order.clone();
    got.sort();
    let mut want: Vec<_> = sc.input.stops.iter().map(|s| s.stop_id).collect();
    want.sort();
    assert_eq!(got, want, "seed {seed}: every stop exactly once");
}

#[test]
fn missing_runtime_is_reported_and_the_solver_still_plans() {
    let path = std::path::Path::new("/nonexistent/onnxruntime/libonnxruntime.so.1.31.1");
    let (mut r, notice) = Rerouter::load(&models(), path);
    let Some(notice) = notice else {
        panic!("a missing runtime must give a notice");
    };
    assert!(
        matches!(&notice.cause, ModelError::RuntimeMissing { path } if path.contains("/nonexistent/")),
        "{notice:?}"
    );
    assert!(notice.cause.to_string().contains("scripts/setup.sh"));
    assert_solver_only(&mut r, 11);
}

#[test]
fn a_file_that_is_not_a_runtime_is_reported() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let fake = dir.path().join("libonnxruntime.so.1.31.1");
    std::fs::write(&fake, b"not a shared library").unwrap_or_else(|e| panic!("{e}"));
    let (mut r, notice) = Rerouter::load(&models(), &fake);
    let cause = notice.map(|n| n.cause);
    assert!(
        matches!(&cause, Some(ModelError::RuntimeLoad { .. })),
        "{cause:?}"
    );
    assert_solver_only(&mut r, 12);
}
