//! `StopStatus::check` over every status × every transition, and its agreement with the fold.
//!
//! Finding, asserted below rather than hidden: the table is *not* rank-monotone in one place.
//! A recoverable failure on a `Cancelled` stop yields `AttemptFailed { failed_attempts: 1 }`,
//! which ranks below `Cancelled` and is not terminal. The table cannot know how many failures
//! happened before the cancel, so it restarts the count; the fold (which sees the facts)
//! keeps `Cancelled` until the budget is spent. Anything that stores `check`'s answer as a
//! status must take the fold's status instead (`fold_never_ranks_below_the_table` below).

// Test code: a panic is the failure report, so helpers may unwrap.
#![allow(clippy::unwrap_used)]

use doorstep_shared::event::{
    ArrivedAtStop, AttemptOutcome, DeliveryAttempted, DeliveryMethod, EventPayload, ParcelScanned,
    ScanPhase, StopCancelled,
};
use doorstep_shared::stop::{ATTEMPT_BUDGET, Transition};
use doorstep_shared::{
    EventId, FailureClass, FailureReason, HlcStamp, ParcelBarcode, StopId, StopState, StopStatus,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const PHASES: [ScanPhase; 4] = [
    ScanPhase::Loaded,
    ScanPhase::OutForDelivery,
    ScanPhase::AtDoor,
    ScanPhase::Returned,
];

fn all_statuses() -> Vec<StopStatus> {
    let mut all = vec![
        StopStatus::Planned,
        StopStatus::Loaded,
        StopStatus::OutForDelivery,
        StopStatus::Arrived,
    ];
    all.extend((1..=ATTEMPT_BUDGET).map(|n| StopStatus::AttemptFailed { failed_attempts: n }));
    all.extend([StopStatus::Cancelled, StopStatus::AttemptsExhausted]);
    all.extend(FailureReason::ALL.map(|reason| StopStatus::FailedTerminal { reason }));
    all.extend([StopStatus::Returned, StopStatus::Delivered]);
    all
}

fn all_transitions() -> Vec<Transition> {
    let mut all: Vec<Transition> = PHASES.map(|phase| Transition::Scan { phase }).to_vec();
    all.extend([Transition::Arrive, Transition::Deliver, Transition::Cancel]);
    all.extend(FailureReason::ALL.map(|reason| Transition::Fail { reason }));
    all
}

fn is_recoverable_fail(t: Transition) -> bool {
    matches!(t, Transition::Fail { reason } if reason.class() == FailureClass::Recoverable)
}

#[test]
fn delivered_and_returned_refuse_every_transition() {
    for from in [StopStatus::Delivered, StopStatus::Returned] {
        for t in all_transitions() {
            let err = from.check(t).unwrap_err();
            assert_eq!((err.from, err.transition), (from, t));
        }
    }
}

#[test]
fn legal_moves_never_lower_the_rank_except_a_recoverable_failure_after_cancel() {
    let mut lowered = Vec::new();
    for from in all_statuses() {
        for t in all_transitions() {
            let Ok(to) = from.check(t) else { continue };
            if to < from {
                lowered.push((from, t, to));
            }
        }
    }
    let expected: Vec<_> = FailureReason::ALL
        .into_iter()
        .map(|reason| Transition::Fail { reason })
        .filter(|t| is_recoverable_fail(*t))
        .map(|t| {
            (
                StopStatus::Cancelled,
                t,
                StopStatus::AttemptFailed { failed_attempts: 1 },
            )
        })
        .collect();
    assert_eq!(lowered, expected);
}

#[test]
fn terminal_statuses_stay_terminal_except_a_recoverable_failure_after_cancel() {
    for from in all_statuses().into_iter().filter(|s| s.is_terminal()) {
        for t in all_transitions() {
            if let Ok(to) = from.check(t) {
                let known_gap = from == StopStatus::Cancelled && is_recoverable_fail(t);
                assert!(to.is_terminal() || known_gap, "{from:?} --{t:?}--> {to:?}");
            }
        }
    }
}

#[test]
fn human_hold_statuses_accept_only_cancel_and_return_scan() {
    let holds = [StopStatus::AttemptsExhausted]
        .into_iter()
        .chain(FailureReason::ALL.map(|reason| StopStatus::FailedTerminal { reason }));
    for from in holds {
        for t in all_transitions() {
            let expected = match t {
                Transition::Cancel => Some(from),
                Transition::Scan {
                    phase: ScanPhase::Returned,
                } => Some(StopStatus::Returned),
                _ => None,
            };
            assert_eq!(from.check(t).ok(), expected, "{from:?} --{t:?}-->");
        }
    }
}

#[test]
fn a_planned_stop_cannot_be_arrived_at_delivered_or_failed() {
    for t in all_transitions() {
        let legal = StopStatus::Planned.check(t).is_ok();
        let expected = matches!(
            t,
            Transition::Cancel
                | Transition::Scan {
                    phase: ScanPhase::Loaded | ScanPhase::OutForDelivery | ScanPhase::Returned
                }
        );
        assert_eq!(legal, expected, "Planned --{t:?}-->");
    }
}

#[test]
fn terminal_reasons_stop_automation_from_any_active_status() {
    let active = all_statuses()
        .into_iter()
        .filter(|s| !s.is_terminal() && *s != StopStatus::Planned);
    for from in active {
        for reason in FailureReason::ALL
            .into_iter()
            .filter(|r| r.class() == FailureClass::Terminal)
        {
            assert_eq!(
                from.check(Transition::Fail { reason }),
                Ok(StopStatus::FailedTerminal { reason })
            );
        }
    }
}

#[test]
fn budget_is_spent_by_recoverable_failures_only() {
    let transient: Vec<_> = FailureReason::ALL
        .into_iter()
        .filter(|r| r.class() == FailureClass::Transient)
        .collect();
    assert!(!transient.is_empty());
    for reason in FailureReason::ALL
        .into_iter()
        .filter(|r| r.class() == FailureClass::Recoverable)
    {
        let mut status = StopStatus::Arrived;
        for n in 1..=ATTEMPT_BUDGET {
            for t in &transient {
                assert_eq!(status.check(Transition::Fail { reason: *t }), Ok(status));
            }
            status = status.check(Transition::Fail { reason }).unwrap();
            let expected = if n < ATTEMPT_BUDGET {
                StopStatus::AttemptFailed { failed_attempts: n }
            } else {
                StopStatus::AttemptsExhausted
            };
            assert_eq!(status, expected, "after {n} {reason:?} failures");
        }
        assert!(status.check(Transition::Fail { reason }).is_err());
        assert!(status.check(Transition::Deliver).is_err());
    }
}

// ---------------------------------------------------------------- table vs fold

fn stop() -> StopId {
    StopId::from_parts(1_772_436_600_000, [0x61; 10])
}

/// The event a driver's (or the office's) transition becomes; `attempt` numbers attempts.
fn event_for(t: Transition, attempt: u32) -> EventPayload {
    let stop_id = stop();
    match t {
        Transition::Scan { phase } => EventPayload::ParcelScanned(ParcelScanned {
            stop_id,
            parcel: ParcelBarcode::parse("PKG-4711").unwrap(),
            phase,
        }),
        Transition::Arrive => EventPayload::ArrivedAtStop(ArrivedAtStop {
            stop_id,
            attempt,
            location: None,
        }),
        Transition::Deliver => EventPayload::DeliveryAttempted(DeliveryAttempted {
            stop_id,
            attempt,
            outcome: AttemptOutcome::Delivered {
                method: DeliveryMethod::HandedToNeighbour,
                recipient: None,
            },
        }),
        Transition::Fail { reason } => EventPayload::DeliveryAttempted(DeliveryAttempted {
            stop_id,
            attempt,
            outcome: AttemptOutcome::Failed {
                reason,
                detail: None,
            },
        }),
        Transition::Cancel => EventPayload::StopCancelled(StopCancelled {
            stop_id,
            reason: "office".into(),
        }),
    }
}

fn transition() -> impl Strategy<Value = Transition> {
    let phase = proptest::sample::select(PHASES.to_vec());
    let reason = proptest::sample::select(FailureReason::ALL.to_vec());
    prop_oneof![
        4 => phase.prop_map(|phase| Transition::Scan { phase }),
        2 => Just(Transition::Arrive),
        1 => Just(Transition::Deliver),
        4 => reason.prop_map(|reason| Transition::Fail { reason }),
        1 => Just(Transition::Cancel),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/transition_table.txt"
        )))),
        ..ProptestConfig::default()
    })]

    /// Drives the table with random commands, turns every legal one into its event and folds
    /// it. The fold never ranks below the table, and without a cancel they agree exactly.
    #[test]
    fn fold_never_ranks_below_the_table(commands in proptest::collection::vec(transition(), 0..16)) {
        let mut table = StopStatus::Planned;
        let mut state = StopState::new(stop());
        let mut attempt = 0u32;
        let mut cancelled = false;
        for (i, t) in commands.into_iter().enumerate() {
            let Ok(next) = table.check(t) else { continue };
            table = next;
            if matches!(t, Transition::Deliver | Transition::Fail { .. }) {
                attempt += 1;
            }
            cancelled |= t == Transition::Cancel;
            let i = u32::try_from(i).unwrap();
            let hlc = HlcStamp { wall_ms: 1_772_436_600_000, logical: i };
            state.apply(EventId::from_parts(1_772_436_600_000, [u8::try_from(i).unwrap(); 10]), hlc, &event_for(t, attempt.max(1)));
            prop_assert!(state.status() >= table, "fold {:?} < table {table:?}", state.status());
            if !cancelled {
                prop_assert_eq!(state.status(), table);
            }
        }
    }
}
