//! The stop state is a function of the *set* of its events: every order and every duplication
//! folds to the same view, the status only moves up in rank, terminal statuses stay terminal,
//! and the stored (postcard) form resumes folding exactly where it left off.
//!
//! `MVReg`'s `PartialEq` can panic, so states are only ever compared through `view()`.

// Test code: a panic is the failure report, so helpers may unwrap.
#![allow(clippy::unwrap_used)]

mod stop_events;

use doorstep_shared::{EventEnvelope, StopState, StopStatus};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use stop_events::{stop, stop_events};

fn config() -> ProptestConfig {
    ProptestConfig {
        // Integration tests have no lib.rs next to them, so the default location would land in
        // tests/; keep every regression file in one committed directory instead.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/stop_fold_properties.txt"
        )))),
        ..ProptestConfig::default()
    }
}

/// Folds `events` in order, asserting after every step that the status never drops in rank
/// and never leaves a terminal status.
fn fold_checked(
    events: &[EventEnvelope],
    mut state: StopState,
) -> Result<StopState, TestCaseError> {
    let mut prev = state.status();
    for e in events {
        state.apply(e.event_id, e.hlc, &e.payload);
        let now = state.status();
        prop_assert!(
            now >= prev,
            "status went down: {prev:?} -> {now:?} after {e:?}"
        );
        prop_assert!(
            !prev.is_terminal() || now.is_terminal(),
            "left a terminal status: {prev:?} -> {now:?} after {e:?}"
        );
        prev = now;
    }
    Ok(state)
}

fn repeated(events: &[EventEnvelope], times: &[usize]) -> Vec<EventEnvelope> {
    events
        .iter()
        .zip(times)
        .flat_map(|(e, n)| std::iter::repeat_n(e.clone(), *n))
        .collect()
}

/// A set of events, a few shuffled orders of it, and a few shuffled orders with duplicates.
#[allow(clippy::type_complexity)]
fn orders() -> impl Strategy<
    Value = (
        Vec<EventEnvelope>,
        Vec<Vec<EventEnvelope>>,
        Vec<Vec<EventEnvelope>>,
    ),
> {
    stop_events().prop_flat_map(|events| {
        let n = events.len();
        let shuffled = vec(Just(events.clone()).prop_shuffle(), 3);
        let base = events.clone();
        let duplicated = vec(
            vec(1usize..=3, n)
                .prop_flat_map(move |times| Just(repeated(&base, &times)).prop_shuffle()),
            2,
        );
        (Just(events), shuffled, duplicated)
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_order_and_duplication_folds_to_the_same_view((events, shuffled, duplicated) in orders()) {
        let reference = fold_checked(&events, StopState::new(stop()))?;
        let view = reference.view();
        for order in shuffled.iter().chain(&duplicated) {
            let state = fold_checked(order, StopState::new(stop()))?;
            prop_assert_eq!(state.status(), reference.status());
            prop_assert_eq!(&state.view(), &view);
        }
    }

    #[test]
    fn folding_the_same_set_twice_changes_nothing((events, shuffled, _) in orders()) {
        let once = fold_checked(&events, StopState::new(stop()))?;
        let twice = fold_checked(&shuffled[0], once.clone())?;
        prop_assert_eq!(twice.view(), once.view());
    }

    #[test]
    fn stored_state_resumes_the_fold_exactly((events, shuffled, _) in orders(), cut in any::<proptest::sample::Index>()) {
        let reference = fold_checked(&events, StopState::new(stop()))?.view();
        let order = &shuffled[0];
        let at = cut.index(order.len() + 1);
        let half = fold_checked(&order[..at], StopState::new(stop()))?;
        let bytes = half.to_bytes();
        let decoded = StopState::from_bytes(&bytes).unwrap();
        prop_assert_eq!(decoded.view(), half.view());
        prop_assert_eq!(decoded.to_bytes(), bytes, "re-encoding a decoded state changed its bytes");
        let resumed = fold_checked(&order[at..], decoded)?;
        prop_assert_eq!(resumed.view(), reference);
    }
}

#[test]
fn a_fresh_stop_is_planned_empty_and_decodable() {
    let view = StopState::new(stop()).view();
    assert_eq!(view.status, StopStatus::Planned);
    assert_eq!(view.event_count, 0);
    assert!(view.conflicts.is_empty());
    // Every stored state must decode, including the first one a server writes for a new stop.
    let decoded = StopState::from_bytes(&StopState::new(stop()).to_bytes()).unwrap();
    assert_eq!(decoded.view(), view);
}
