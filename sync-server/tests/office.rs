//! The office side against the real binary: street facts beat office edits, dispatcher commands
//! are idempotent under their `Idempotency-Key`, and a long-polling device is woken by an edit.
#![allow(clippy::unwrap_used)]

mod harness;

use doorstep_shared::StopStatus;
use doorstep_shared::event::{EventPayload, ScanPhase, TimeWindow};
use doorstep_shared::protocol::{CommandOutcome, CommandReceipt, EscalationKind, PushStatus};
use doorstep_shared::stop::StopConflict;
use harness::{Encoding, World};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_delivery_made_offline_beats_a_cancellation_and_is_escalated() {
    let w = World::new();
    let mut d = w.device(0, 11).await;
    let stop = w.stops(0)[0];
    let before = vec![d.scan(stop, "PKG-1", ScanPhase::Loaded), d.arrive(stop, 1)];
    let r = w
        .api
        .push(&d.token, &d.request(before), Encoding::Identity)
        .await;
    assert_eq!(r.last_applied_seq, 2);

    // The office cancels while the driver is at the door, offline.
    let body = json!({ "reason": "customer called to cancel" });
    let first = w
        .api
        .stop_command(stop, "cancel", &body, Some("cancel-1"))
        .await;
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let receipt: CommandReceipt = first.json();
    assert_eq!(receipt.outcome, CommandOutcome::Applied);
    assert_eq!(receipt.intent_key, format!("cancel:{stop}"));
    assert_eq!(w.api.stop(stop).await.view.status, StopStatus::Cancelled);

    // Idempotency: the same key and body replays the first answer byte for byte ...
    let replay = w
        .api
        .stop_command(stop, "cancel", &body, Some("cancel-1"))
        .await;
    assert_eq!((replay.status, &replay.body), (first.status, &first.body));
    // ... the same key with another body is refused ...
    w.api
        .stop_command(
            stop,
            "cancel",
            &json!({ "reason": "other" }),
            Some("cancel-1"),
        )
        .await
        .problem(422, "idempotency_key_reused");
    // ... a command without a key is refused ...
    w.api
        .stop_command(stop, "cancel", &body, None)
        .await
        .problem(400, "idempotency_key_missing");
    // ... and a new key for the same intent changes nothing.
    let again: CommandReceipt = w
        .api
        .stop_command(stop, "cancel", &body, Some("cancel-2"))
        .await
        .json();
    assert_eq!(again.outcome, CommandOutcome::AlreadyApplied);
    let cancels = w
        .api
        .stop(stop)
        .await
        .events
        .iter()
        .filter(|e| matches!(e.payload, EventPayload::StopCancelled(_)))
        .count();
    assert_eq!(cancels, 1, "one cancellation in the log");

    // The device, which never saw the cancellation, delivers.
    let delivered = d.delivered(stop, 1);
    let r = w
        .api
        .push(
            &d.token,
            &d.request(vec![delivered.clone()]),
            Encoding::Gzip,
        )
        .await;
    assert_eq!(r.results[0].status, PushStatus::Applied, "{r:?}");
    assert_eq!(r.results[0].code, None);

    let detail = w.api.stop(stop).await;
    assert_eq!(detail.view.status, StopStatus::Delivered, "the street wins");
    assert!(
        detail
            .view
            .conflicts
            .contains(&StopConflict::DeliveredAfterCancel),
        "{:?}",
        detail.view.conflicts
    );
    let esc = w.api.escalations(false).await;
    assert!(
        esc.iter()
            .any(|e| e.kind == EscalationKind::DeliveredAfterCancel
                && e.stop_id == Some(stop)
                && !e.resolved),
        "{esc:?}"
    );
    // A cancel command now (after the delivery) leaves the delivery standing.
    let late = w
        .api
        .stop_command(stop, "cancel", &body, Some("cancel-3"))
        .await;
    assert_eq!(late.status, 200, "{late:?}");
    assert_eq!(w.api.stop(stop).await.view.status, StopStatus::Delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_is_woken_by_a_reschedule_and_sees_only_its_own_courier() {
    let w = World::new();
    let d = w.device(0, 12).await;
    let other = w.device(1, 13).await;
    let stop = w.stops(0)[2];

    // Catch up to the latest cursor (the seeded route assignment).
    let mut cursor = 0;
    loop {
        let p = w.api.pull(&d.token, cursor, 0).await;
        cursor = p.cursor;
        if !p.has_more {
            break;
        }
    }
    assert!(cursor > 0, "the route assignment is in the feed");
    let other_cursor = w.api.pull(&other.token, 0, 0).await.cursor;

    let waiting = {
        let (api, token) = (w.api.clone(), d.token.clone());
        tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(20), api.pull(&token, cursor, 30_000)).await
        })
    };
    let window = TimeWindow {
        start_ms: harness::now_ms() + 3_600_000,
        end_ms: harness::now_ms() + 7_200_000,
    };
    let r = w
        .api
        .stop_command(
            stop,
            "reschedule",
            &json!({ "window": window }),
            Some("reschedule-1"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    let pulled = waiting
        .await
        .unwrap()
        .expect("the long-poll was not woken within 20 s (it waits up to 30 s)");
    assert!(pulled.cursor > cursor);
    let change = pulled
        .changes
        .iter()
        .find_map(|c| match &c.payload {
            EventPayload::StopRescheduled(r) => Some(r),
            _ => None,
        })
        .expect("the reschedule is in the pulled changes");
    assert_eq!(change.stop_id, stop);
    assert_eq!(change.window, window);

    // Another courier's device does not see it.
    let p = w.api.pull(&other.token, other_cursor, 0).await;
    assert!(p.changes.is_empty(), "{p:?}");
    assert_eq!(w.api.stop(stop).await.view.window, Some(window));
}

#[tokio::test]
async fn the_second_failed_contact_attempt_escalates_customer_unreachable_once() {
    let w = World::new();
    let stop = w.stops(0)[0];
    let unreachable = |all: Vec<doorstep_shared::protocol::Escalation>| {
        all.into_iter()
            .filter(|e| e.kind == EscalationKind::CustomerUnreachable && e.stop_id == Some(stop))
            .count()
    };
    let contact = async |n: u128, result: &str| {
        let body = json!({
            "note_id": uuid::Uuid::from_u128(n),
            "result": result,
            "message": "",
        });
        let key = format!("contact-{n}");
        let r = w.api.stop_command(stop, "contact", &body, Some(&key)).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        // A replayed request (same key) and a double click (same note) count once.
        let again = w.api.stop_command(stop, "contact", &body, Some(&key)).await;
        assert_eq!(again.status, 200);
        let other_key = format!("contact-{n}-again");
        let dup = w
            .api
            .stop_command(stop, "contact", &body, Some(&other_key))
            .await;
        assert_eq!(
            dup.json::<CommandReceipt>().outcome,
            CommandOutcome::AlreadyApplied
        );
    };

    contact(1, "no_answer").await;
    contact(2, "reached").await;
    assert_eq!(unreachable(w.api.escalations(true).await), 0);
    contact(3, "wrong_number").await;
    let open = w.api.escalations(false).await;
    assert_eq!(unreachable(open.clone()), 1);
    let esc = open
        .iter()
        .find(|e| e.kind == EscalationKind::CustomerUnreachable)
        .unwrap();
    assert_eq!(esc.priority, EscalationKind::CustomerUnreachable.priority());

    // The third failure opens nothing new.
    contact(4, "left_message").await;
    assert_eq!(unreachable(w.api.escalations(true).await), 1);
}

#[tokio::test]
async fn resolving_diverged_access_notes_with_a_chosen_value_rewrites_them() {
    let w = World::new();
    let mut d = w.device(0, 21).await;
    let stop = w.stops(0)[0];
    let edit = |actor: &str, text: &str| {
        EventPayload::AccessNotesEdited(doorstep_shared::event::AccessNotesEdited {
            stop_id: stop,
            actor: actor.to_owned(),
            version: [(actor.to_owned(), 1)].into_iter().collect(),
            text: text.to_owned(),
        })
    };
    let events = vec![
        d.event(edit("phone-a", "code 1234 at the side gate")),
        d.event(edit("phone-b", "ring the concierge")),
    ];
    let r = w
        .api
        .push(&d.token, &d.request(events), Encoding::Identity)
        .await;
    assert!(r.results.iter().all(|x| x.status == PushStatus::Applied));
    assert_eq!(w.api.stop(stop).await.view.access_notes.len(), 2);
    let esc = w
        .api
        .escalations(false)
        .await
        .into_iter()
        .find(|e| e.kind == EscalationKind::AccessNotesDiverged && e.stop_id == Some(stop))
        .expect("divergence escalated");

    let path = format!("/v1/dispatch/escalations/{}/resolve", esc.escalation_id);
    let resolve = |chosen: &str, key: &str| {
        w.api
            .http
            .post(w.api.url(&path))
            .bearer_auth(&w.api.dispatcher_token)
            .header("Idempotency-Key", key)
            .json(&json!({ "resolution": "kept one", "chosen_value": chosen }))
            .send()
    };
    // A value that is not among the conflicting ones is refused and changes nothing.
    let bad = resolve("somewhere else", "resolve-bad").await.unwrap();
    assert_eq!(bad.status(), 400);
    let ok = resolve("ring the concierge", "resolve-1").await.unwrap();
    assert_eq!(ok.status(), 200, "{}", ok.text().await.unwrap());

    let view = w.api.stop(stop).await.view;
    assert_eq!(view.access_notes, vec!["ring the concierge".to_owned()]);
    assert!(
        !view
            .conflicts
            .iter()
            .any(|c| matches!(c, StopConflict::AccessNotesDiverged { .. }))
    );
    assert!(
        w.api
            .escalations(true)
            .await
            .iter()
            .any(|e| e.escalation_id == esc.escalation_id && e.resolved)
    );
    // The courier's device learns the office edit too.
    let pulled = w.api.pull(&d.token, 0, 0).await;
    assert!(pulled.changes.iter().any(|c| matches!(
        &c.payload,
        EventPayload::AccessNotesEdited(e) if e.actor == "office" && e.text == "ring the concierge"
    )));
}
