//! The pure heart of push: given one event and what the store knows about its intent and its
//! stop, decide the outcome. No I/O; the push algorithm ([`crate::push`]) calls this same
//! function for every backend, so the semantics cannot drift between them.

use doorstep_shared::event::{AttemptOutcome, EventEnvelope, EventPayload, InvalidEvent};
use doorstep_shared::intent::fingerprint;
use doorstep_shared::protocol::{EscalationKind, PushStatus};
use doorstep_shared::stop::{StopConflict, Transition};
use doorstep_shared::{
    CourierId, EventId, FailureReason, ProblemCode, StopId, StopState, StopStatus,
};

/// An intent that was already applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownIntent {
    pub fingerprint: String,
    pub event_id: EventId,
}

/// What the store knows about the stop an event refers to.
#[derive(Clone, Debug)]
pub struct StopRecord {
    pub state: StopState,
    /// Every courier the stop has ever been assigned to (the current one included).
    pub assigned_to: Vec<CourierId>,
}

/// Facts beyond the stop's state that some rules need. The store fills in what the event
/// needs (see [`EventContext::wants_evidence_head`] and [`EventContext::wants_plan_notes`]).
#[derive(Clone, Debug, Default)]
pub struct EventContext {
    /// For a proof: the statement digest of the device's previous logged proof (empty for its
    /// first, or when that one was unsigned).
    pub evidence_head: Option<String>,
    /// For a failed "no access" attempt: the stop's planned access instructions.
    pub plan_access_notes: Option<String>,
    /// The intent key of an already logged event with this event's `event_id`, if any.
    pub event_id_logged_with: Option<String>,
    /// For a parcel scan: the stops the parcel is planned for (empty when no plan names it).
    pub parcel_planned_for: Vec<StopId>,
}

impl EventContext {
    /// The event is a signed proof: its chain link is checked against the device's head.
    pub fn wants_evidence_head(env: &EventEnvelope) -> bool {
        matches!(&env.payload, EventPayload::ProofCaptured(p) if p.signature.is_some())
    }

    /// The event is an attempt that failed for "no access": the rule needs the plan's notes.
    pub fn wants_plan_notes(env: &EventEnvelope) -> bool {
        no_access_attempt(&env.payload).is_some()
    }
}

fn no_access_attempt(payload: &EventPayload) -> Option<u32> {
    match payload {
        EventPayload::DeliveryAttempted(a)
            if matches!(
                a.outcome,
                AttemptOutcome::Failed {
                    reason: FailureReason::NoAccess,
                    ..
                }
            ) =>
        {
            Some(a.attempt)
        }
        _ => None,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEscalation {
    pub kind: EscalationKind,
    pub stop_id: Option<StopId>,
    pub detail: String,
}

/// The outcome of one event.
#[derive(Clone, Debug)]
pub struct Decision {
    pub status: PushStatus,
    pub code: Option<ProblemCode>,
    pub detail: Option<String>,
    /// The stop's new state, when the event was applied to a stop.
    pub new_state: Option<StopState>,
    /// Record the intent as applied (only for `Applied`).
    pub record_intent: bool,
    pub escalations: Vec<NewEscalation>,
    /// For a proof whose signature verified (whatever the outcome): its statement digest, the
    /// link the device's next proof must carry.
    pub evidence_head: Option<String>,
}

impl Decision {
    fn settled(status: PushStatus, code: Option<ProblemCode>, detail: Option<String>) -> Self {
        Self {
            status,
            code,
            detail,
            new_state: None,
            record_intent: false,
            escalations: vec![],
            evidence_head: None,
        }
    }

    fn rejected(code: ProblemCode, detail: String, stop_id: Option<StopId>) -> Self {
        let esc = NewEscalation {
            kind: EscalationKind::RejectedEvent,
            stop_id,
            detail: format!("{}: {detail}", code.as_str()),
        };
        Self {
            escalations: vec![esc],
            ..Self::settled(PushStatus::Rejected, Some(code), Some(detail))
        }
    }
}

/// The move an event asks the state machine for, if it is one.
pub fn transition_of(payload: &EventPayload) -> Option<Transition> {
    match payload {
        EventPayload::ParcelScanned(e) => Some(Transition::Scan { phase: e.phase }),
        EventPayload::ArrivedAtStop(_) => Some(Transition::Arrive),
        EventPayload::DeliveryAttempted(e) => Some(match e.outcome {
            AttemptOutcome::Delivered { .. } => Transition::Deliver,
            AttemptOutcome::Failed { reason, .. } => Transition::Fail { reason },
        }),
        _ => None,
    }
}

fn invalid_code(e: &InvalidEvent) -> ProblemCode {
    match e {
        InvalidEvent::UnsupportedSchema(_) => ProblemCode::UnsupportedSchemaVersion,
        InvalidEvent::OfficeKindFromDevice(_) => ProblemCode::OfficeKindFromDevice,
        InvalidEvent::IntentKeyMismatch { .. } => ProblemCode::IntentKeyMismatch,
        InvalidEvent::Field { .. } => ProblemCode::InvalidEvent,
    }
}

/// Decides one device event whose `device_seq` is the next expected one.
///
/// Order of checks: the event's own validity (fields, evidence signature, evidence chain); then
/// its business intent (a duplicate or a conflict never touches state); then whether the device
/// may act on the stop; then the state machine; then the fold and the rules it triggers.
pub fn decide_device_event(
    env: &EventEnvelope,
    courier: CourierId,
    known: Option<&KnownIntent>,
    stop: Option<&StopRecord>,
    ctx: &EventContext,
) -> Decision {
    let stop_id = env.payload.stop_id();
    if let Err(e) = env.validate_from_device() {
        return Decision::rejected(invalid_code(&e), e.to_string(), stop_id);
    }
    if let Some(logged) = ctx
        .event_id_logged_with
        .as_deref()
        .filter(|k| *k != env.intent_key)
    {
        return Decision::rejected(
            ProblemCode::EventIdReused,
            format!(
                "event id {} was already logged for intent {logged}, not {}",
                env.event_id, env.intent_key
            ),
            stop_id,
        );
    }
    if let Some((code, detail)) = crate::evidence::push_check(env) {
        return Decision::rejected(code, detail, stop_id);
    }
    // The signature verified (or there is none): a signed statement extends the device's chain
    // even when it is rejected below, so one break is reported once and the chain goes on.
    let evidence_head = env.payload.evidence_link().map(str::to_owned);
    let mut d = match crate::evidence::chain_check(env, ctx.evidence_head.as_deref()) {
        Some(detail) => Decision::rejected(ProblemCode::EvidenceChainBroken, detail, stop_id),
        None => decide_fact(env, courier, known, stop, ctx),
    };
    d.evidence_head = evidence_head;
    d
}

/// The decision for a device event whose own content is valid.
fn decide_fact(
    env: &EventEnvelope,
    courier: CourierId,
    known: Option<&KnownIntent>,
    stop: Option<&StopRecord>,
    ctx: &EventContext,
) -> Decision {
    if let Some(d) = mis_sort(env, ctx) {
        // Before the intent: a mis-sorted scan never records the parcel's scan, so the courier
        // whose stop the parcel is planned for is not blocked by it.
        return d;
    }
    let stop_id = env.payload.stop_id();
    if let Some(k) = known {
        return if k.fingerprint == fingerprint(&env.payload) {
            Decision::settled(
                PushStatus::Duplicate,
                None,
                Some(format!("intent already applied by event {}", k.event_id)),
            )
        } else {
            let detail = format!(
                "intent {} was applied by event {} with a different payload",
                env.intent_key, k.event_id
            );
            Decision {
                escalations: vec![NewEscalation {
                    kind: EscalationKind::IntentConflict,
                    stop_id,
                    detail: detail.clone(),
                }],
                ..Decision::settled(
                    PushStatus::Conflict,
                    Some(ProblemCode::IntentConflict),
                    Some(detail),
                )
            }
        };
    }
    let Some(stop_id) = stop_id else {
        return Decision {
            record_intent: true,
            ..Decision::settled(PushStatus::Applied, None, None)
        };
    };
    let Some(record) = stop else {
        return Decision::rejected(
            ProblemCode::InvalidEvent,
            format!("stop {stop_id} is not known to the server"),
            Some(stop_id),
        );
    };
    if !record.assigned_to.contains(&courier) {
        return Decision::rejected(
            ProblemCode::Forbidden,
            format!("stop {stop_id} was never assigned to this device's courier"),
            Some(stop_id),
        );
    }
    let before = record.state.status();
    if let Some(t) = transition_of(&env.payload)
        && let Err(illegal) = before.check(t)
    {
        return Decision::rejected(
            ProblemCode::IllegalTransition,
            illegal.to_string(),
            Some(stop_id),
        );
    }
    let mut state = record.state.clone();
    state.apply(env.event_id, env.hlc, &env.payload);
    let mut escalations = state_escalations(&record.state, &state);
    escalations.extend(no_access_escalation(
        &record.state,
        &env.payload,
        ctx.plan_access_notes.as_deref(),
    ));
    Decision {
        status: PushStatus::Applied,
        code: None,
        detail: None,
        new_state: Some(state),
        record_intent: true,
        escalations,
        evidence_head: None,
    }
}

/// Escalations opened by a state change: new conflicts, and newly reached states that need a
/// human (attempt budget spent, terminal failure).
pub fn state_escalations(before: &StopState, after: &StopState) -> Vec<NewEscalation> {
    let stop_id = Some(after.stop_id);
    let old = before.conflicts();
    let mut out: Vec<NewEscalation> = after
        .conflicts()
        .into_iter()
        .filter(|c| {
            !old.iter()
                .any(|o| std::mem::discriminant(o) == std::mem::discriminant(c))
        })
        .map(|c| {
            let (kind, detail) = match c {
                StopConflict::DeliveredAfterCancel => (
                    EscalationKind::DeliveredAfterCancel,
                    "delivered in the street after the office cancelled the stop".to_owned(),
                ),
                StopConflict::DeliveredAfterReassign => (
                    EscalationKind::DeliveredAfterReassign,
                    "delivered by a courier after the stop was reassigned".to_owned(),
                ),
                StopConflict::AccessNotesDiverged { values } => (
                    EscalationKind::AccessNotesDiverged,
                    format!("concurrent access-note edits: {values:?}"),
                ),
            };
            NewEscalation {
                kind,
                stop_id,
                detail,
            }
        })
        .collect();
    let (b, a) = (before.status(), after.status());
    if a != b {
        match a {
            StopStatus::AttemptsExhausted => out.push(NewEscalation {
                kind: EscalationKind::AttemptsExhausted,
                stop_id,
                detail: "attempt budget spent".to_owned(),
            }),
            StopStatus::FailedTerminal { reason } => out.push(NewEscalation {
                kind: EscalationKind::TerminalFailure,
                stop_id,
                detail: format!("attempt failed for a terminal reason: {}", reason.code()),
            }),
            _ => {}
        }
    }
    out
}

/// `no_access_instructions`: an attempt failed for "no access" and the stop has no access
/// instructions (none planned, none edited since). Opened by the first such attempt only; a
/// later one at the same stop is already in front of a human.
pub fn no_access_escalation(
    before: &StopState,
    payload: &EventPayload,
    plan_access_notes: Option<&str>,
) -> Option<NewEscalation> {
    let attempt = no_access_attempt(payload)?;
    let view = before.view();
    let planned = plan_access_notes.is_some_and(|n| !n.trim().is_empty());
    let edited = view.access_notes.iter().any(|n| !n.trim().is_empty());
    let earlier = view.attempts.iter().any(|(n, o)| {
        *n != attempt
            && matches!(
                o,
                AttemptOutcome::Failed {
                    reason: FailureReason::NoAccess,
                    ..
                }
            )
    });
    (!planned && !edited && !earlier).then(|| NewEscalation {
        kind: EscalationKind::NoAccessInstructions,
        stop_id: Some(before.stop_id),
        detail: format!(
            "attempt {attempt} failed for no access and the stop has no access instructions: \
             get a door code or gate instructions from the customer"
        ),
    })
}

/// `parcel_mis_sorted`: a scan of a parcel at a stop other than the ones it is planned for.
fn mis_sort(env: &EventEnvelope, ctx: &EventContext) -> Option<Decision> {
    let EventPayload::ParcelScanned(scan) = &env.payload else {
        return None;
    };
    if ctx.parcel_planned_for.is_empty() || ctx.parcel_planned_for.contains(&scan.stop_id) {
        return None;
    }
    let detail = format!(
        "parcel {} was scanned for stop {}, but it is planned for another stop",
        scan.parcel, scan.stop_id
    );
    Some(Decision {
        escalations: vec![NewEscalation {
            kind: EscalationKind::ParcelMisSorted,
            stop_id: Some(scan.stop_id),
            detail: detail.clone(),
        }],
        ..Decision::settled(
            PushStatus::Rejected,
            Some(ProblemCode::ParcelMisSorted),
            Some(detail),
        )
    })
}

/// `clock_skew`: the device's clock is off by more than the bound; one open escalation per
/// device at a time.
pub fn skew_escalation(clock_offset_ms: i64, already_open: bool) -> Option<NewEscalation> {
    (clock_offset_ms.abs() > doorstep_shared::protocol::CLOCK_SKEW_BOUND_MS && !already_open).then(
        || NewEscalation {
            kind: EscalationKind::ClockSkew,
            stop_id: None,
            detail: format!("device clock is off by {clock_offset_ms} ms"),
        },
    )
}

/// Failed contact attempts after which the customer counts as unreachable.
pub const UNREACHABLE_AFTER_FAILED_CONTACTS: u32 = 2;

/// The escalation a contact attempt opens: `customer_unreachable` when the stop's count of
/// failed attempts (`failed_before` → `failed_after`) reaches the threshold. It crosses the
/// threshold once, so the third and later failures open nothing.
pub fn contact_escalation(
    stop_id: StopId,
    failed_before: u32,
    failed_after: u32,
) -> Option<NewEscalation> {
    (failed_before < UNREACHABLE_AFTER_FAILED_CONTACTS
        && failed_after >= UNREACHABLE_AFTER_FAILED_CONTACTS)
        .then(|| NewEscalation {
            kind: EscalationKind::CustomerUnreachable,
            stop_id: Some(stop_id),
            detail: format!(
                "customer unreachable after {failed_after} unsuccessful contact attempts"
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_shared::event::*;
    use doorstep_shared::{DeviceId, FailureReason, HlcStamp, ParcelBarcode};

    const COURIER: CourierId = CourierId(uuid::Uuid::from_u128(1));
    const OTHER: CourierId = CourierId(uuid::Uuid::from_u128(2));
    const DEVICE: DeviceId = DeviceId(uuid::Uuid::from_u128(3));
    const STOP: StopId = StopId(uuid::Uuid::from_u128(4));
    const NO_CTX: EventContext = EventContext {
        evidence_head: None,
        plan_access_notes: None,
        event_id_logged_with: None,
        parcel_planned_for: Vec::new(),
    };

    fn env(seq: u64, payload: EventPayload) -> EventEnvelope {
        EventEnvelope {
            event_id: EventId::from_parts(1_000 + seq, [seq as u8; 10]),
            device_id: DEVICE,
            device_seq: seq,
            intent_key: doorstep_shared::intent::intent_key(&payload, &DEVICE),
            schema_version: 1,
            device_time_ms: 1_000 + seq,
            hlc: HlcStamp {
                wall_ms: 1_000 + seq,
                logical: 0,
            },
            blob_digests: vec![],
            payload,
        }
    }

    fn scan(phase: ScanPhase) -> EventPayload {
        EventPayload::ParcelScanned(ParcelScanned {
            stop_id: STOP,
            parcel: ParcelBarcode::parse("PKG-1").unwrap(),
            phase,
        })
    }

    fn attempt(n: u32, outcome: AttemptOutcome) -> EventPayload {
        EventPayload::DeliveryAttempted(DeliveryAttempted {
            stop_id: STOP,
            attempt: n,
            outcome,
        })
    }

    fn delivered() -> AttemptOutcome {
        AttemptOutcome::Delivered {
            method: DeliveryMethod::HandedToRecipient,
            recipient: None,
        }
    }

    fn record(events: &[EventEnvelope]) -> StopRecord {
        let mut state = StopState::new(STOP);
        for e in events {
            state.apply(e.event_id, e.hlc, &e.payload);
        }
        StopRecord {
            state,
            assigned_to: vec![COURIER],
        }
    }

    #[test]
    fn same_intent_same_payload_is_a_duplicate_and_touches_nothing() {
        let e = env(2, scan(ScanPhase::Loaded));
        let known = KnownIntent {
            fingerprint: fingerprint(&e.payload),
            event_id: e.event_id,
        };
        let d = decide_device_event(&e, COURIER, Some(&known), Some(&record(&[])), &NO_CTX);
        assert_eq!(d.status, PushStatus::Duplicate);
        assert!(d.new_state.is_none() && !d.record_intent && d.escalations.is_empty());
    }

    #[test]
    fn same_intent_other_payload_is_a_conflict_with_an_escalation() {
        let first = env(1, attempt(1, delivered()));
        let known = KnownIntent {
            fingerprint: fingerprint(&first.payload),
            event_id: first.event_id,
        };
        let failed = AttemptOutcome::Failed {
            reason: FailureReason::CustomerAbsent,
            detail: None,
        };
        let second = env(2, attempt(1, failed));
        let d = decide_device_event(&second, COURIER, Some(&known), None, &NO_CTX);
        assert_eq!(
            (d.status, d.code),
            (PushStatus::Conflict, Some(ProblemCode::IntentConflict))
        );
        assert_eq!(d.escalations[0].kind, EscalationKind::IntentConflict);
        assert!(d.new_state.is_none());
    }

    #[test]
    fn invalid_events_are_rejected_with_their_code_and_escalated() {
        let mut e = env(1, scan(ScanPhase::Loaded));
        e.intent_key = "scan:something-else".into();
        let d = decide_device_event(&e, COURIER, None, Some(&record(&[])), &NO_CTX);
        assert_eq!(
            (d.status, d.code),
            (PushStatus::Rejected, Some(ProblemCode::IntentKeyMismatch))
        );
        assert_eq!(d.escalations[0].kind, EscalationKind::RejectedEvent);

        let zero = env(1, attempt(0, delivered()));
        let d = decide_device_event(&zero, COURIER, None, Some(&record(&[])), &NO_CTX);
        assert_eq!(d.code, Some(ProblemCode::InvalidEvent));
    }

    #[test]
    fn illegal_transition_is_rejected() {
        let d = decide_device_event(
            &env(1, attempt(1, delivered())),
            COURIER,
            None,
            Some(&record(&[])),
            &NO_CTX,
        );
        assert_eq!(
            (d.status, d.code),
            (PushStatus::Rejected, Some(ProblemCode::IllegalTransition))
        );
    }

    #[test]
    fn unknown_and_foreign_stops_are_rejected() {
        let e = env(1, scan(ScanPhase::Loaded));
        assert_eq!(
            decide_device_event(&e, COURIER, None, None, &NO_CTX).code,
            Some(ProblemCode::InvalidEvent)
        );
        assert_eq!(
            decide_device_event(&e, OTHER, None, Some(&record(&[])), &NO_CTX).code,
            Some(ProblemCode::Forbidden)
        );
    }

    #[test]
    fn a_legal_event_applies_and_folds() {
        let loaded = env(1, scan(ScanPhase::Loaded));
        let d = decide_device_event(
            &env(2, attempt(1, delivered())),
            COURIER,
            None,
            Some(&record(&[loaded])),
            &NO_CTX,
        );
        assert_eq!(d.status, PushStatus::Applied);
        assert!(d.record_intent);
        assert_eq!(d.new_state.unwrap().status(), StopStatus::Delivered);
    }

    #[test]
    fn delivery_on_a_cancelled_stop_stands_and_escalates() {
        let loaded = env(1, scan(ScanPhase::Loaded));
        let mut rec = record(&[loaded]);
        let cancel = EventPayload::StopCancelled(StopCancelled {
            stop_id: STOP,
            reason: "customer called".into(),
        });
        rec.state.apply(
            EventId::from_parts(5, [9; 10]),
            HlcStamp {
                wall_ms: 5,
                logical: 0,
            },
            &cancel,
        );
        assert_eq!(rec.state.status(), StopStatus::Cancelled);
        let d = decide_device_event(
            &env(2, attempt(1, delivered())),
            COURIER,
            None,
            Some(&rec),
            &NO_CTX,
        );
        assert_eq!(d.status, PushStatus::Applied);
        assert_eq!(d.new_state.unwrap().status(), StopStatus::Delivered);
        assert!(
            d.escalations
                .iter()
                .any(|e| e.kind == EscalationKind::DeliveredAfterCancel)
        );
    }

    #[test]
    fn spending_the_attempt_budget_escalates_once() {
        let mut events = vec![env(1, scan(ScanPhase::Loaded))];
        let absent = || AttemptOutcome::Failed {
            reason: FailureReason::CustomerAbsent,
            detail: None,
        };
        events.push(env(2, attempt(1, absent())));
        events.push(env(3, attempt(2, absent())));
        let d = decide_device_event(
            &env(4, attempt(3, absent())),
            COURIER,
            None,
            Some(&record(&events)),
            &NO_CTX,
        );
        assert_eq!(d.new_state.unwrap().status(), StopStatus::AttemptsExhausted);
        let kinds: Vec<_> = d.escalations.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, vec![EscalationKind::AttemptsExhausted]);
    }

    #[test]
    fn a_scan_of_a_parcel_planned_for_another_stop_is_a_mis_sort_that_records_no_intent() {
        let other = StopId(uuid::Uuid::from_u128(5));
        let elsewhere = EventContext {
            parcel_planned_for: vec![other],
            ..NO_CTX
        };
        let e = env(1, scan(ScanPhase::Loaded));
        let d = decide_device_event(&e, COURIER, None, Some(&record(&[])), &elsewhere);
        assert_eq!(
            (d.status, d.code),
            (PushStatus::Rejected, Some(ProblemCode::ParcelMisSorted))
        );
        assert_eq!(kinds(&d), vec![EscalationKind::ParcelMisSorted]);
        assert!(d.new_state.is_none() && !d.record_intent);
        // Even when the parcel's own stop already recorded the scan's intent: a mis-sort, not
        // a conflict with the right courier's scan.
        let known = KnownIntent {
            fingerprint: "the right courier's scan".into(),
            event_id: EventId::from_parts(9, [9; 10]),
        };
        let d = decide_device_event(&e, COURIER, Some(&known), Some(&record(&[])), &elsewhere);
        assert_eq!(d.code, Some(ProblemCode::ParcelMisSorted));

        // Planned here (and maybe elsewhere too), or named by no plan: the usual rules.
        for planned in [vec![STOP], vec![other, STOP], vec![]] {
            let ctx = EventContext {
                parcel_planned_for: planned.clone(),
                ..NO_CTX
            };
            let d = decide_device_event(&e, COURIER, None, Some(&record(&[])), &ctx);
            assert_eq!(d.status, PushStatus::Applied, "planned for {planned:?}");
        }
    }

    #[test]
    fn an_event_id_logged_with_another_intent_is_rejected() {
        let loaded = env(1, scan(ScanPhase::Loaded));
        let rec = record(std::slice::from_ref(&loaded));
        let arrive = env(2, scan(ScanPhase::AtDoor));
        let reused = EventContext {
            event_id_logged_with: Some(loaded.intent_key.clone()),
            ..NO_CTX
        };
        let d = decide_device_event(&arrive, COURIER, None, Some(&rec), &reused);
        assert_eq!(
            (d.status, d.code),
            (PushStatus::Rejected, Some(ProblemCode::EventIdReused))
        );
        assert_eq!(kinds(&d), vec![EscalationKind::RejectedEvent]);
        assert!(d.new_state.is_none() && !d.record_intent);
        // The same id logged with the same intent is no reuse: the intent rules judge it.
        let same = EventContext {
            event_id_logged_with: Some(arrive.intent_key.clone()),
            ..NO_CTX
        };
        let d = decide_device_event(&arrive, COURIER, None, Some(&rec), &same);
        assert_eq!(d.status, PushStatus::Applied);
    }

    #[test]
    fn events_without_a_stop_apply_without_state() {
        let fix = EventPayload::LocationFixed(LocationFixed {
            location: GeoPoint {
                lat: 52.5,
                lon: 13.4,
            },
            accuracy_m: 5.0,
            fix_time_ms: 77,
        });
        let d = decide_device_event(&env(1, fix), COURIER, None, None, &NO_CTX);
        assert_eq!(d.status, PushStatus::Applied);
        assert!(d.record_intent && d.new_state.is_none());
    }

    #[test]
    fn the_second_failed_contact_opens_customer_unreachable_once() {
        let stop = StopId(uuid::Uuid::from_u128(9));
        assert!(contact_escalation(stop, 0, 1).is_none());
        let esc = contact_escalation(stop, 1, 2).expect("second failure escalates");
        assert_eq!(esc.kind, EscalationKind::CustomerUnreachable);
        assert_eq!(esc.stop_id, Some(stop));
        // A successful attempt in between counts nothing; later failures open nothing more.
        assert!(contact_escalation(stop, 1, 1).is_none());
        assert!(contact_escalation(stop, 2, 3).is_none());
        assert!(contact_escalation(stop, 2, 2).is_none());
    }
    fn failed(n: u32, reason: FailureReason) -> EventPayload {
        attempt(
            n,
            AttemptOutcome::Failed {
                reason,
                detail: None,
            },
        )
    }

    fn kinds(d: &Decision) -> Vec<EscalationKind> {
        d.escalations.iter().map(|e| e.kind).collect()
    }

    #[test]
    fn no_access_at_a_stop_without_instructions_escalates_once() {
        let loaded = env(1, scan(ScanPhase::Loaded));
        let out = env(2, scan(ScanPhase::OutForDelivery));
        let first = env(3, failed(1, FailureReason::NoAccess));
        let d = decide_device_event(
            &first,
            COURIER,
            None,
            Some(&record(&[loaded.clone(), out.clone()])),
            &NO_CTX,
        );
        assert_eq!(d.status, PushStatus::Applied);
        assert_eq!(kinds(&d), vec![EscalationKind::NoAccessInstructions]);
        assert_eq!(d.escalations[0].stop_id, Some(STOP));
        assert!(
            d.escalations[0].detail.contains("attempt 1"),
            "{}",
            d.escalations[0].detail
        );
        // The second "no access" at the same stop is already in front of a human.
        let second = env(4, failed(2, FailureReason::NoAccess));
        let d = decide_device_event(
            &second,
            COURIER,
            None,
            Some(&record(&[loaded, out, first])),
            &NO_CTX,
        );
        assert_eq!(d.status, PushStatus::Applied);
        assert!(kinds(&d).is_empty(), "{:?}", kinds(&d));
    }

    #[test]
    fn no_access_with_access_instructions_or_another_reason_opens_nothing() {
        let loaded = env(1, scan(ScanPhase::Loaded));
        let rec = record(std::slice::from_ref(&loaded));
        let planned = EventContext {
            plan_access_notes: Some("Gate code 4711".into()),
            ..NO_CTX
        };
        let d = decide_device_event(
            &env(2, failed(1, FailureReason::NoAccess)),
            COURIER,
            None,
            Some(&rec),
            &planned,
        );
        assert!(kinds(&d).is_empty());
        let blank = EventContext {
            plan_access_notes: Some("  ".into()),
            ..NO_CTX
        };
        let d = decide_device_event(
            &env(2, failed(1, FailureReason::NoAccess)),
            COURIER,
            None,
            Some(&rec),
            &blank,
        );
        assert_eq!(
            kinds(&d),
            vec![EscalationKind::NoAccessInstructions],
            "blank notes are no notes"
        );
        let edited = env(
            2,
            EventPayload::AccessNotesEdited(AccessNotesEdited {
                stop_id: STOP,
                actor: "office".into(),
                version: [("office".to_owned(), 1)].into_iter().collect(),
                text: "Ring the concierge".into(),
            }),
        );
        let d = decide_device_event(
            &env(3, failed(1, FailureReason::NoAccess)),
            COURIER,
            None,
            Some(&record(&[loaded.clone(), edited])),
            &NO_CTX,
        );
        assert!(kinds(&d).is_empty(), "edited notes count as instructions");
        let d = decide_device_event(
            &env(2, failed(1, FailureReason::CustomerAbsent)),
            COURIER,
            None,
            Some(&rec),
            &NO_CTX,
        );
        assert!(kinds(&d).is_empty());
    }

    #[test]
    fn a_terminal_failure_escalates() {
        let loaded = env(1, scan(ScanPhase::Loaded));
        let d = decide_device_event(
            &env(2, failed(1, FailureReason::AddressInvalid)),
            COURIER,
            None,
            Some(&record(&[loaded])),
            &NO_CTX,
        );
        assert_eq!(d.status, PushStatus::Applied);
        assert_eq!(kinds(&d), vec![EscalationKind::TerminalFailure]);
        assert!(d.escalations[0].detail.contains("address_invalid"));
    }

    #[test]
    fn clock_skew_beyond_the_bound_escalates_once_per_device() {
        let bound = doorstep_shared::protocol::CLOCK_SKEW_BOUND_MS;
        assert!(skew_escalation(bound, false).is_none());
        let esc = skew_escalation(-(bound + 1), false).expect("beyond the bound");
        assert_eq!(esc.kind, EscalationKind::ClockSkew);
        assert!(esc.detail.contains(&format!("{}", -(bound + 1))));
        assert!(
            skew_escalation(bound + 1, true).is_none(),
            "one open escalation at a time"
        );
    }

    fn signed_proof(seq: u64, n: u32, prev: &str) -> EventEnvelope {
        let mut e = env(
            seq,
            EventPayload::ProofCaptured(ProofCaptured {
                stop_id: STOP,
                attempt: n,
                photos: vec![doorstep_shared::BlobDigest::of(b"photo")],
                thumbnails: vec![],
                recipient_name: None,
                location: None,
                signature: None,
            }),
        );
        if let EventPayload::ProofCaptured(p) = &mut e.payload {
            p.signature = Some(doorstep_shared::evidence::sign(
                &[7; 32], &DEVICE, e.hlc, p, prev,
            ));
        }
        e
    }

    #[test]
    fn an_invalid_proof_signature_is_rejected_and_escalated() {
        let loaded = env(1, scan(ScanPhase::Loaded));
        let mut proof = signed_proof(2, 1, "");
        if let EventPayload::ProofCaptured(p) = &mut proof.payload {
            p.recipient_name = Some("someone else".into());
        }
        let ctx = EventContext {
            evidence_head: Some(String::new()),
            ..NO_CTX
        };
        let d = decide_device_event(&proof, COURIER, None, Some(&record(&[loaded])), &ctx);
        assert_eq!(
            (d.status, d.code),
            (PushStatus::Rejected, Some(ProblemCode::InvalidSignature))
        );
        assert_eq!(kinds(&d), vec![EscalationKind::RejectedEvent]);
        assert!(d.escalations[0].detail.starts_with("invalid_signature"));
        assert!(d.new_state.is_none() && !d.record_intent);
        assert!(
            d.evidence_head.is_none(),
            "a forged statement never moves the chain head"
        );
    }

    #[test]
    fn a_proof_off_the_device_chain_is_rejected_with_context() {
        let loaded = env(1, scan(ScanPhase::Loaded));
        let rec = record(&[loaded]);
        let head = "ab".repeat(32);
        let linked = signed_proof(2, 1, &head);
        let ctx = EventContext {
            evidence_head: Some(head.clone()),
            ..NO_CTX
        };
        assert!(EventContext::wants_evidence_head(&linked));
        let d = decide_device_event(&linked, COURIER, None, Some(&rec), &ctx);
        assert_eq!(d.status, PushStatus::Applied);
        let skipped = signed_proof(2, 1, &"cd".repeat(32));
        let d = decide_device_event(&skipped, COURIER, None, Some(&rec), &ctx);
        assert_eq!(
            (d.status, d.code),
            (PushStatus::Rejected, Some(ProblemCode::EvidenceChainBroken))
        );
        assert_eq!(kinds(&d), vec![EscalationKind::RejectedEvent]);
        let detail = &d.escalations[0].detail;
        assert!(
            detail.starts_with("evidence_chain_broken") && detail.contains(&head),
            "{detail}"
        );
        assert!(d.new_state.is_none() && !d.record_intent);
        assert_eq!(
            d.evidence_head.as_deref(),
            skipped.payload.evidence_link(),
            "a validly signed statement moves the head even when its link is broken"
        );
        // A device's first proof links to nothing.
        let first = EventContext {
            evidence_head: Some(String::new()),
            ..NO_CTX
        };
        let d = decide_device_event(&signed_proof(2, 1, ""), COURIER, None, Some(&rec), &first);
        assert_eq!(d.status, PushStatus::Applied);
    }
}
