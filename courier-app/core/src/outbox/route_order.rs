//! A driver's replan (`RouteReplanned`) applied to the local route order. Pure: the projection
//! reads the route's sequence numbers, asks [`resequence`] which ones change, and writes them in
//! the transaction that records the event.

use doorstep_shared::StopId;
use std::collections::{HashMap, HashSet};

/// The new sequence numbers after a replan, for the stops whose number changes.
///
/// The stops `order` lists that are on the route (`current`: every stop of the route with its
/// sequence number) take the sequence numbers they held between them, in `order`'s order; every
/// other stop (delivered, moved away, or simply not listed) keeps its number. So a replan of
/// the remaining stops never moves a finished one, and replaying the old order restores the old
/// numbers exactly. Stops in `order` that the route does not hold, and repeats, are ignored.
pub(crate) fn resequence(current: &[(StopId, u32)], order: &[StopId]) -> Vec<(StopId, u32)> {
    let on_route: HashSet<StopId> = current.iter().map(|(s, _)| *s).collect();
    let mut seen = HashSet::new();
    let listed: Vec<StopId> = order
        .iter()
        .copied()
        .filter(|s| on_route.contains(s) && seen.insert(*s))
        .collect();
    let mut slots: Vec<u32> = current
        .iter()
        .filter(|(s, _)| seen.contains(s))
        .map(|(_, seq)| *seq)
        .collect();
    slots.sort_unstable();
    let old: HashMap<StopId, u32> = current.iter().copied().collect();
    listed
        .into_iter()
        .zip(slots)
        .filter(|(stop, seq)| old.get(stop) != Some(seq))
        .collect()
}

/// Whether a new office version of a route changed the relative order of the stops it shares
/// with the previous version (`(stop, sequence)` each). Adding, dropping or re-timing stops is
/// not a reorder; the driver's own replans then still stand on top of the new version.
pub(crate) fn office_reordered(old: &[(StopId, u32)], new: &[(StopId, u32)]) -> bool {
    let shared_order = |plan: &[(StopId, u32)], other: &[(StopId, u32)]| {
        let keep: HashSet<StopId> = other.iter().map(|(s, _)| *s).collect();
        let mut shared: Vec<(StopId, u32)> = plan
            .iter()
            .copied()
            .filter(|(s, _)| keep.contains(s))
            .collect();
        shared.sort_by_key(|&(_, seq)| seq);
        shared.into_iter().map(|(s, _)| s).collect::<Vec<_>>()
    };
    shared_order(old, new) != shared_order(new, old)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> StopId {
        StopId(uuid::Uuid::from_u128(n))
    }

    fn apply(current: &[(StopId, u32)], changes: &[(StopId, u32)]) -> Vec<StopId> {
        let mut all: Vec<(StopId, u32)> = current
            .iter()
            .map(|&(s, q)| {
                let q = changes.iter().find(|c| c.0 == s).map_or(q, |c| c.1);
                (s, q)
            })
            .collect();
        all.sort_by_key(|&(_, q)| q);
        all.into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn listed_stops_swap_their_slots_and_others_stay_put() {
        // 1 and 3 are done; 2, 4, 5 remain and are replanned as 5, 2, 4.
        let current = [(id(1), 1), (id(2), 2), (id(3), 3), (id(4), 4), (id(5), 5)];
        let changes = resequence(&current, &[id(5), id(2), id(4)]);
        assert_eq!(changes, vec![(id(5), 2), (id(2), 4), (id(4), 5)]);
        assert_eq!(
            apply(&current, &changes),
            vec![id(1), id(5), id(3), id(2), id(4)]
        );
    }

    #[test]
    fn replaying_the_old_order_restores_the_old_numbers() {
        let current = [(id(1), 10), (id(2), 20), (id(3), 30), (id(4), 40)];
        let changes = resequence(&current, &[id(4), id(3), id(2)]);
        let after: Vec<(StopId, u32)> = current
            .iter()
            .map(|&(s, q)| (s, changes.iter().find(|c| c.0 == s).map_or(q, |c| c.1)))
            .collect();
        let back = resequence(&after, &[id(2), id(3), id(4)]);
        assert_eq!(apply(&after, &back), vec![id(1), id(2), id(3), id(4)]);
        let restored: Vec<(StopId, u32)> = after
            .iter()
            .map(|&(s, q)| (s, back.iter().find(|c| c.0 == s).map_or(q, |c| c.1)))
            .collect();
        assert_eq!(restored, current.to_vec());
    }

    #[test]
    fn unknown_and_repeated_stops_are_ignored() {
        let current = [(id(1), 0), (id(2), 1)];
        let changes = resequence(&current, &[id(9), id(2), id(2), id(1)]);
        assert_eq!(changes, vec![(id(2), 0), (id(1), 1)]);
        assert!(resequence(&current, &[id(1), id(2)]).is_empty());
        assert!(resequence(&current, &[]).is_empty());
    }

    #[test]
    fn an_office_reorder_is_told_apart_from_added_dropped_or_renumbered_stops() {
        let v1 = [(id(1), 1), (id(2), 2), (id(3), 3)];
        assert!(!office_reordered(&v1, &v1));
        // A stop added in the middle, one dropped, numbers shifted: same relative order.
        let v2 = [(id(1), 10), (id(4), 15), (id(3), 30)];
        assert!(!office_reordered(&v1, &v2));
        // 3 now comes before 1.
        let v3 = [(id(3), 1), (id(1), 2), (id(2), 3)];
        assert!(office_reordered(&v1, &v3));
        // Nothing shared: nothing to reorder.
        assert!(!office_reordered(&v1, &[(id(9), 1)]));
    }
}
