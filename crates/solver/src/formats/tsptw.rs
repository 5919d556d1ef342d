//! TSPTW files (Dumas, Gendreau, Ohlmann-Thomas, AFG as published by López-Ibáñez):
//! `N`, an `N × N` integer travel matrix with service times folded in, then `N` lines
//! `earliest latest`. Node 0 is the depot. Trailing `#` comment lines are ignored.

use super::{FormatError, Tokens};
use crate::instance::{Instance, InstanceParts, Kind};

pub fn parse(name: &str, text: &str) -> Result<Instance, FormatError> {
    let mut tokens = Tokens::new(text);
    let n = tokens.next_i64("the node count")?;
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| (2..=100_000).contains(&n))
        .ok_or_else(|| FormatError::Invalid {
            line: 1,
            message: format!("node count {n} out of range"),
        })?;
    let mut travel = Vec::with_capacity(n * n);
    for _ in 0..n * n {
        travel.push(tokens.next_i64("a travel-matrix entry")?);
    }
    let mut earliest = Vec::with_capacity(n);
    let mut latest = Vec::with_capacity(n);
    for _ in 0..n {
        earliest.push(tokens.next_i64("a window start")?);
        latest.push(tokens.next_i64("a window end")?);
    }
    if let Some((line, tok)) = tokens.rest_is_empty() {
        return Err(FormatError::Invalid {
            line,
            message: format!("unexpected trailing data {tok:?}"),
        });
    }
    Ok(Instance::new(InstanceParts {
        name: name.to_owned(),
        kind: Kind::Tsptw,
        travel,
        earliest,
        latest,
        service: vec![0; n],
        demand: vec![0; n],
        capacity: None,
        max_vehicles: 1,
        cost_scale: 1,
    })?)
}
