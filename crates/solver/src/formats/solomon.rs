//! Solomon VRPTW in the VRPLIB layout (`NODE_COORD_SECTION`, `DEMAND_SECTION`,
//! `TIME_WINDOW_SECTION`, `SERVICE_TIME` header or `SERVICE_TIME_SECTION`), DIMACS
//! convention: distance = travel time = `floor(10 · euclid)` tenths, so every time is also
//! kept in tenths (`cost_scale = 10`) and the arithmetic stays exact.

use super::tsplib::read_coords;
use super::{FormatError, header_value, parse_i64, section};
use crate::instance::{Instance, InstanceParts, Kind};

const SCALE: i64 = 10;

pub fn parse(name: &str, text: &str) -> Result<Instance, FormatError> {
    let coords = read_coords(text)?;
    let n = coords.len();
    let capacity = header_value(text, "CAPACITY").ok_or(FormatError::MissingField("CAPACITY"))?;
    let capacity = parse_i64(0, "CAPACITY", capacity)?;
    // The DIMACS rules allow 25 vehicles when the file does not say.
    let vehicles = match header_value(text, "VEHICLES") {
        Some(v) => parse_i64(0, "VEHICLES", v)?,
        None => 25,
    };
    let demand = per_node(text, "DEMAND_SECTION", n, 1)?
        .into_iter()
        .map(|d| d[0])
        .collect();
    let windows = per_node(text, "TIME_WINDOW_SECTION", n, 2)?;
    let service = match header_value(text, "SERVICE_TIME") {
        // The depot has no service time in the Solomon sets.
        Some(s) => {
            let s = parse_i64(0, "SERVICE_TIME", s)?;
            (0..n).map(|i| if i == 0 { 0 } else { s * SCALE }).collect()
        }
        None => per_node(text, "SERVICE_TIME_SECTION", n, 1)?
            .into_iter()
            .map(|s| s[0] * SCALE)
            .collect(),
    };
    let depot = section(text, "DEPOT_SECTION").ok_or(FormatError::MissingField("DEPOT_SECTION"))?;
    if let Some((line, l)) = depot.first()
        && l.trim() != "1"
    {
        return Err(FormatError::Unsupported {
            field: "DEPOT_SECTION",
            value: format!(
                "depot {} on line {line} (only node 1 is supported)",
                l.trim()
            ),
        });
    }
    let mut travel = Vec::with_capacity(n * n);
    for a in &coords {
        for b in &coords {
            travel.push(tenths(a, b));
        }
    }
    Ok(Instance::new(InstanceParts {
        name: name.to_owned(),
        kind: Kind::Solomon,
        travel,
        earliest: windows.iter().map(|w| w[0] * SCALE).collect(),
        latest: windows.iter().map(|w| w[1] * SCALE).collect(),
        service,
        demand,
        capacity: Some(capacity),
        max_vehicles: usize::try_from(vehicles).unwrap_or(0),
        cost_scale: SCALE,
    })?)
}

/// `floor(10 · euclid)`. Solomon coordinates are integers, so this is an integer square
/// root and exact; a float `floor` can land one tenth low when `10·d` is a whole number.
fn tenths(a: &(f64, f64), b: &(f64, f64)) -> i64 {
    let (dx, dy) = (a.0 - b.0, a.1 - b.1);
    if dx.fract() == 0.0 && dy.fract() == 0.0 && dx.abs() < 1e6 && dy.abs() < 1e6 {
        let sq = (dx * dx + dy * dy) as u64 * (SCALE * SCALE) as u64;
        sq.isqrt() as i64
    } else {
        (dx.hypot(dy) * SCALE as f64).floor() as i64
    }
}

/// `index v1 .. vk` lines for every node, in order.
fn per_node(
    text: &str,
    name: &'static str,
    n: usize,
    k: usize,
) -> Result<Vec<Vec<i64>>, FormatError> {
    let lines = section(text, name).ok_or(FormatError::MissingField(name))?;
    if lines.len() != n {
        return Err(FormatError::Invalid {
            line: lines.first().map_or(0, |l| l.0),
            message: format!("{name} has {} lines, expected {n}", lines.len()),
        });
    }
    let mut out = Vec::with_capacity(n);
    for (i, (line, l)) in lines.into_iter().enumerate() {
        let parts: Vec<&str> = l.split_whitespace().collect();
        if parts.len() != k + 1 || parse_i64(line, "a node index", parts[0])? != i as i64 + 1 {
            return Err(FormatError::Invalid {
                line,
                message: format!("expected `{} <{k} values>`, got {l:?}", i + 1),
            });
        }
        let vals = parts[1..]
            .iter()
            .map(|t| parse_i64(line, name, t))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(vals);
    }
    Ok(out)
}
