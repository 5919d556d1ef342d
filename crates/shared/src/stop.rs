//! The stop state machine and its convergent fold.
//!
//! Two views of one idea:
//! - [`StopStatus::check`] is the explicit transition table. The device validates every command
//!   against it before it becomes an event, and the server refuses events that would make an
//!   illegal move (`illegal_transition`).
//! - [`StopState`] is a join-semilattice over the *set* of a stop's events. Folding the same set
//!   in any order, with any duplication, gives the same state; the derived status only moves
//!   forward and terminal states win. Office facts never overwrite street facts: a delivery made
//!   while a dispatcher cancelled the stop stands, and [`StopState::conflicts`] reports it.
//!
//! The `crdts` crate supplies the registers: an `MVReg` keeps every concurrent edit of the access
//! notes until a human picks one, and `LWWReg`s hold office-owned values (window, route). The
//! state is stored with [`StopState::to_bytes`] (postcard), not JSON.

use crate::event::{AttemptOutcome, DeliveryMethod, EventPayload, ScanPhase, TimeWindow};
use crate::hlc::HlcStamp;
use crate::ids::{EventId, ParcelBarcode, RouteId, StopId};
use crate::reason::{FailureClass, FailureReason};
use crdts::{CmRDT, LWWReg, MVReg, VClock};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Failed recoverable attempts after which a stop stops being retried automatically.
pub const ATTEMPT_BUDGET: u32 = 3;

/// Where a stop is, as dispatchers and drivers see it. Ordered by rank: a stop's status never
/// moves to a lower rank, and every status from [`StopStatus::Cancelled`] up is terminal.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StopStatus {
    Planned,
    Loaded,
    OutForDelivery,
    Arrived,
    /// At least one failed attempt; the stop can still be reattempted.
    AttemptFailed {
        failed_attempts: u32,
    },
    Cancelled,
    /// The attempt budget is spent; a human decides what happens next.
    AttemptsExhausted,
    /// An attempt failed for a terminal reason; a human decides what happens next.
    FailedTerminal {
        reason: FailureReason,
    },
    Returned,
    Delivered,
}

/// A move a command asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "transition", rename_all = "snake_case")]
pub enum Transition {
    Scan { phase: ScanPhase },
    Arrive,
    Deliver,
    Fail { reason: FailureReason },
    Cancel,
}

/// A command asked for a move the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("cannot {transition:?} a stop that is {from:?}")]
pub struct IllegalTransition {
    pub from: StopStatus,
    pub transition: Transition,
}

impl StopStatus {
    pub fn is_terminal(self) -> bool {
        self >= StopStatus::Cancelled
    }

    /// The transition table. Returns the status the move leads to on its own (the fold may
    /// still rank another fact higher), or why the move is illegal.
    ///
    /// Street facts are allowed on a cancelled stop: the street wins over the office, and the
    /// server opens an escalation instead.
    pub fn check(self, t: Transition) -> Result<StopStatus, IllegalTransition> {
        use StopStatus as S;
        use Transition as T;
        let illegal = Err(IllegalTransition {
            from: self,
            transition: t,
        });
        let failed = |n: u32| S::AttemptFailed { failed_attempts: n };
        match (self, t) {
            (S::Delivered | S::Returned, _) => illegal,
            (_, T::Cancel) => Ok(S::Cancelled.max(self)),
            (
                _,
                T::Scan {
                    phase: ScanPhase::Returned,
                },
            ) => Ok(S::Returned),
            (S::AttemptsExhausted | S::FailedTerminal { .. }, _) => illegal,
            (
                S::Planned,
                T::Scan {
                    phase: ScanPhase::Loaded,
                },
            ) => Ok(S::Loaded),
            (
                _,
                T::Scan {
                    phase: ScanPhase::Loaded,
                },
            ) => Ok(self),
            (
                S::Planned | S::Loaded,
                T::Scan {
                    phase: ScanPhase::OutForDelivery,
                },
            ) => Ok(S::OutForDelivery),
            (
                _,
                T::Scan {
                    phase: ScanPhase::OutForDelivery,
                },
            ) => Ok(self),
            (
                S::Planned,
                T::Scan {
                    phase: ScanPhase::AtDoor,
                }
                | T::Arrive,
            ) => illegal,
            (
                S::Loaded | S::OutForDelivery,
                T::Scan {
                    phase: ScanPhase::AtDoor,
                }
                | T::Arrive,
            ) => Ok(S::Arrived),
            (
                _,
                T::Scan {
                    phase: ScanPhase::AtDoor,
                }
                | T::Arrive,
            ) => Ok(self),
            (S::Planned, T::Deliver | T::Fail { .. }) => illegal,
            (_, T::Deliver) => Ok(S::Delivered),
            (_, T::Fail { reason }) => Ok(match (reason.class(), self) {
                (FailureClass::Terminal, _) => S::FailedTerminal { reason },
                (FailureClass::Transient, _) => self,
                (FailureClass::Recoverable, S::AttemptFailed { failed_attempts: n }) => {
                    if n + 1 >= ATTEMPT_BUDGET {
                        S::AttemptsExhausted
                    } else {
                        failed(n + 1)
                    }
                }
                (FailureClass::Recoverable, _) => failed(1),
            }),
        }
    }
}

/// Orders facts of the same kind deterministically: the earlier HLC stamp, then the smaller id.
pub type FactMarker = (HlcStamp, EventId);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptFact {
    pub marker: FactMarker,
    #[serde(with = "as_json_text")]
    pub outcome: AttemptOutcome,
}

/// postcard cannot decode internally tagged enums (they need `deserialize_any`), and the wire
/// forms of [`StopStatus`] and [`AttemptOutcome`] are internally tagged. Inside the stored state
/// those fields therefore travel as their (stable, v1) JSON text.
mod as_json_text {
    use serde::de::{DeserializeOwned, Error as _};
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(value).map_err(S::Error::custom)?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        d: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(D::Error::custom)
    }
}

/// The convergent state of one stop. Build it with [`StopState::new`] and
/// [`StopState::apply`]; compare two states with [`StopState::view`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StopState {
    pub stop_id: StopId,
    events: BTreeSet<EventId>,
    #[serde(with = "as_json_text")]
    phase: StopStatus,
    attempts: BTreeMap<u32, AttemptFact>,
    returned: Option<FactMarker>,
    cancelled: Option<(FactMarker, String)>,
    window: LWWReg<Option<TimeWindow>, FactMarker>,
    route: LWWReg<Option<RouteId>, FactMarker>,
    reassigned: bool,
    access_notes: MVReg<String, String>,
    parcels: BTreeMap<ParcelBarcode, ScanPhase>,
    notes: BTreeMap<FactMarker, String>,
    proofs: BTreeMap<u32, FactMarker>,
    beacon_sightings: BTreeSet<EventId>,
}

/// A conflict between facts that automation must not settle.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "conflict", rename_all = "snake_case")]
pub enum StopConflict {
    /// The street delivered a stop the office had cancelled.
    DeliveredAfterCancel,
    /// The street delivered a stop the office had moved to another route.
    DeliveredAfterReassign,
    /// Concurrent edits of the access notes; every value is kept until a human picks one.
    AccessNotesDiverged { values: Vec<String> },
}

/// A canonical, comparable, serialisable picture of a stop (what the dispatcher API shows).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StopView {
    pub stop_id: StopId,
    pub status: StopStatus,
    pub event_count: usize,
    pub attempts: Vec<(u32, AttemptOutcome)>,
    pub delivered_by: Option<DeliveryMethod>,
    pub window: Option<TimeWindow>,
    pub route: Option<RouteId>,
    /// Sorted; more than one value means concurrent edits that a human must resolve.
    pub access_notes: Vec<String>,
    pub parcels: Vec<(ParcelBarcode, ScanPhase)>,
    pub notes: Vec<String>,
    pub proof_attempts: Vec<u32>,
    pub beacon_sightings: usize,
    pub conflicts: Vec<StopConflict>,
}

/// The state could not be decoded from its stored bytes.
#[derive(Debug, thiserror::Error)]
#[error("stored stop state is unreadable: {0}")]
pub struct StateDecodeError(#[from] postcard::Error);

fn keep_min(slot: &mut Option<FactMarker>, m: FactMarker) {
    if slot.is_none_or(|cur| m < cur) {
        *slot = Some(m);
    }
}

impl StopState {
    pub fn new(stop_id: StopId) -> Self {
        Self {
            stop_id,
            events: BTreeSet::new(),
            phase: StopStatus::Planned,
            attempts: BTreeMap::new(),
            returned: None,
            cancelled: None,
            window: LWWReg {
                val: None,
                marker: (HlcStamp::default(), EventId(uuid::Uuid::nil())),
            },
            route: LWWReg {
                val: None,
                marker: (HlcStamp::default(), EventId(uuid::Uuid::nil())),
            },
            reassigned: false,
            access_notes: MVReg::new(),
            parcels: BTreeMap::new(),
            notes: BTreeMap::new(),
            proofs: BTreeMap::new(),
            beacon_sightings: BTreeSet::new(),
        }
    }

    /// Folds one event into the state. Idempotent and order-insensitive: every field is a
    /// lattice join (max, min-by-marker, set union, LWW by unique marker, MV register).
    /// Events about another stop, or with nothing to say about a stop, are ignored.
    pub fn apply(&mut self, event_id: EventId, hlc: HlcStamp, payload: &EventPayload) {
        if payload.stop_id() != Some(self.stop_id)
            && !matches!(payload, EventPayload::RouteAssigned(_))
        {
            return;
        }
        let m: FactMarker = (hlc, event_id);
        match payload {
            EventPayload::RouteAssigned(e) => {
                let Some(plan) = e.stops.iter().find(|s| s.stop_id == self.stop_id) else {
                    return;
                };
                self.window.update(Some(plan.window), m);
                self.route.update(Some(e.route_id), m);
            }
            EventPayload::ParcelScanned(e) => {
                let phase = self.parcels.entry(e.parcel.clone()).or_insert(e.phase);
                *phase = (*phase).max(e.phase);
                match e.phase {
                    ScanPhase::Loaded => self.phase = self.phase.max(StopStatus::Loaded),
                    ScanPhase::OutForDelivery => {
                        self.phase = self.phase.max(StopStatus::OutForDelivery)
                    }
                    ScanPhase::AtDoor => self.phase = self.phase.max(StopStatus::Arrived),
                    ScanPhase::Returned => keep_min(&mut self.returned, m),
                }
            }
            EventPayload::ArrivedAtStop(_) => self.phase = self.phase.max(StopStatus::Arrived),
            EventPayload::DeliveryAttempted(e) => {
                let fact = AttemptFact {
                    marker: m,
                    outcome: e.outcome.clone(),
                };
                match self.attempts.get(&e.attempt) {
                    Some(cur) if cur.marker <= m => {}
                    _ => {
                        self.attempts.insert(e.attempt, fact);
                    }
                }
            }
            EventPayload::ProofCaptured(e) => {
                let slot = self.proofs.entry(e.attempt).or_insert(m);
                *slot = (*slot).min(m);
            }
            EventPayload::NoteAdded(e) => {
                self.notes.insert(m, e.text.clone());
            }
            EventPayload::AccessNotesEdited(e) => {
                let clock: VClock<String> = VClock {
                    dots: e.version.clone(),
                };
                self.access_notes.apply(crdts::mvreg::Op::Put {
                    clock,
                    val: e.text.clone(),
                });
            }
            EventPayload::BeaconSighted(_) => {
                self.beacon_sightings.insert(event_id);
            }
            EventPayload::StopRescheduled(e) => self.window.update(Some(e.window), m),
            EventPayload::StopReassigned(e) => {
                self.route.update(Some(e.to_route), m);
                self.reassigned = true;
            }
            EventPayload::StopCancelled(e) => match &self.cancelled {
                Some((cur, _)) if *cur <= m => {}
                _ => self.cancelled = Some((m, e.reason.clone())),
            },
            EventPayload::LocationFixed(_)
            | EventPayload::RouteReplanned(_)
            | EventPayload::EscalationResolved(_) => return,
        }
        self.events.insert(event_id);
    }

    fn delivered(&self) -> Option<DeliveryMethod> {
        self.attempts.values().find_map(|a| match a.outcome {
            AttemptOutcome::Delivered { method, .. } => Some(method),
            AttemptOutcome::Failed { .. } => None,
        })
    }

    fn failures(&self) -> impl Iterator<Item = FailureReason> + '_ {
        self.attempts.values().filter_map(|a| match a.outcome {
            AttemptOutcome::Failed { reason, .. } => Some(reason),
            AttemptOutcome::Delivered { .. } => None,
        })
    }

    /// The status, derived from the facts. Each rule below is monotone in the set of events and
    /// outranks the rules after it, so the status can only move up.
    pub fn status(&self) -> StopStatus {
        if self.delivered().is_some() {
            return StopStatus::Delivered;
        }
        if self.returned.is_some() {
            return StopStatus::Returned;
        }
        // The highest reason, not the lowest: `StopStatus` orders `FailedTerminal` by reason,
        // so only the maximum keeps the status from moving down when a second terminal
        // failure arrives.
        if let Some(reason) = self
            .failures()
            .filter(|r| r.class() == FailureClass::Terminal)
            .max()
        {
            return StopStatus::FailedTerminal { reason };
        }
        let recoverable = self
            .failures()
            .filter(|r| r.class() == FailureClass::Recoverable)
            .count() as u32;
        if recoverable >= ATTEMPT_BUDGET {
            return StopStatus::AttemptsExhausted;
        }
        if self.cancelled.is_some() {
            return StopStatus::Cancelled;
        }
        if recoverable > 0 {
            return StopStatus::AttemptFailed {
                failed_attempts: recoverable,
            };
        }
        self.phase
    }

    /// Number of the next attempt a driver would make.
    pub fn next_attempt(&self) -> u32 {
        self.attempts.keys().next_back().map_or(1, |n| n + 1)
    }

    /// The attempt recorded under `n`, if any.
    pub fn attempt(&self, n: u32) -> Option<&AttemptOutcome> {
        self.attempts.get(&n).map(|a| &a.outcome)
    }

    pub fn route(&self) -> Option<RouteId> {
        self.route.val
    }

    pub fn cancelled(&self) -> bool {
        self.cancelled.is_some()
    }

    /// Conflicts a human must settle.
    pub fn conflicts(&self) -> Vec<StopConflict> {
        let mut out = Vec::new();
        if self.delivered().is_some() && self.cancelled.is_some() {
            out.push(StopConflict::DeliveredAfterCancel);
        }
        if self.delivered().is_some() && self.reassigned {
            out.push(StopConflict::DeliveredAfterReassign);
        }
        let values = self.access_note_values();
        if values.len() > 1 {
            out.push(StopConflict::AccessNotesDiverged { values });
        }
        out
    }

    /// The merged version vector of every value the access-notes register holds: an edit
    /// whose version dominates it (e.g. this with the editor's counter bumped) replaces them all.
    pub fn access_notes_clock(&self) -> BTreeMap<String, u64> {
        self.access_notes.read_ctx().add_clock.dots
    }

    fn access_note_values(&self) -> Vec<String> {
        let mut values = self.access_notes.read().val;
        values.sort();
        values.dedup();
        values
    }

    pub fn view(&self) -> StopView {
        StopView {
            stop_id: self.stop_id,
            status: self.status(),
            event_count: self.events.len(),
            attempts: self
                .attempts
                .iter()
                .map(|(n, a)| (*n, a.outcome.clone()))
                .collect(),
            delivered_by: self.delivered(),
            window: self.window.val,
            route: self.route.val,
            access_notes: self.access_note_values(),
            parcels: self.parcels.iter().map(|(b, p)| (b.clone(), *p)).collect(),
            notes: self.notes.values().cloned().collect(),
            proof_attempts: self.proofs.keys().copied().collect(),
            beacon_sightings: self.beacon_sightings.len(),
            conflicts: self.conflicts(),
        }
    }

    /// Binary encoding for storage (the `crdts` JSON form does not round-trip every state).
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StateDecodeError> {
        Ok(postcard::from_bytes(bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::AccessNotesEdited;

    fn edit(state: &mut StopState, n: u128, actor: &str, version: &[(&str, u64)], text: &str) {
        let payload = EventPayload::AccessNotesEdited(AccessNotesEdited {
            stop_id: state.stop_id,
            actor: actor.to_owned(),
            version: version.iter().map(|(a, c)| ((*a).to_owned(), *c)).collect(),
            text: text.to_owned(),
        });
        let hlc = HlcStamp {
            wall_ms: 1_000 + n as u64,
            logical: 0,
        };
        state.apply(EventId(uuid::Uuid::from_u128(n)), hlc, &payload);
    }

    #[test]
    fn access_notes_clock_merges_concurrent_versions_and_a_dominating_edit_collapses_them() {
        let mut s = StopState::new(StopId(uuid::Uuid::from_u128(7)));
        assert!(s.access_notes_clock().is_empty());
        edit(&mut s, 1, "a", &[("a", 1)], "gate code 1234");
        edit(&mut s, 2, "a", &[("a", 2)], "gate code 4321");
        edit(&mut s, 3, "b", &[("a", 1), ("b", 1)], "ring twice");
        assert_eq!(s.view().access_notes.len(), 2);
        let clock = s.access_notes_clock();
        assert_eq!(
            clock,
            BTreeMap::from([("a".to_owned(), 2), ("b".to_owned(), 1)])
        );

        let mut version: Vec<(&str, u64)> = clock.iter().map(|(a, c)| (a.as_str(), *c)).collect();
        version.push(("office", 1));
        edit(&mut s, 4, "office", &version, "ring twice");
        assert_eq!(s.view().access_notes, vec!["ring twice".to_owned()]);
        assert!(s.conflicts().is_empty());
    }
}
