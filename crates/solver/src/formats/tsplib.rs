//! Symmetric TSPLIB files with `EDGE_WEIGHT_TYPE: EUC_2D`: distance = `nint(euclid)`.
//! The first node of the file is the depot (a tour is a cycle, so any node will do).

use super::{FormatError, header_value, parse_i64, section};
use crate::instance::{Instance, InstanceParts, Kind, OPEN_LATEST};

pub fn parse(name: &str, text: &str) -> Result<Instance, FormatError> {
    let weight = header_value(text, "EDGE_WEIGHT_TYPE")
        .ok_or(FormatError::MissingField("EDGE_WEIGHT_TYPE"))?;
    if weight != "EUC_2D" {
        return Err(FormatError::Unsupported {
            field: "EDGE_WEIGHT_TYPE",
            value: weight.to_owned(),
        });
    }
    let coords = read_coords(text)?;
    let n = coords.len();
    if let Some(dim) = header_value(text, "DIMENSION") {
        let dim = parse_i64(0, "DIMENSION", dim)?;
        if dim != n as i64 {
            return Err(FormatError::Invalid {
                line: 0,
                message: format!("DIMENSION {dim} but {n} coordinates"),
            });
        }
    }
    let mut travel = Vec::with_capacity(n * n);
    for a in &coords {
        for b in &coords {
            // TSPLIB's nint: round half up of the Euclidean distance.
            travel.push(((a.0 - b.0).hypot(a.1 - b.1) + 0.5).floor() as i64);
        }
    }
    Ok(Instance::new(InstanceParts {
        name: name.to_owned(),
        kind: Kind::Tsplib,
        travel,
        earliest: vec![0; n],
        latest: vec![OPEN_LATEST; n],
        service: vec![0; n],
        demand: vec![0; n],
        capacity: None,
        max_vehicles: 1,
        cost_scale: 1,
    })?)
}

/// `index x y` lines; indices must be 1..=n in order (both sets here are).
pub(crate) fn read_coords(text: &str) -> Result<Vec<(f64, f64)>, FormatError> {
    let lines = section(text, "NODE_COORD_SECTION")
        .ok_or(FormatError::MissingField("NODE_COORD_SECTION"))?;
    let mut coords = Vec::with_capacity(lines.len());
    for (line, l) in lines {
        let parts: Vec<&str> = l.split_whitespace().collect();
        let [idx, x, y] = parts[..] else {
            return Err(FormatError::Invalid {
                line,
                message: format!("expected `index x y`, got {l:?}"),
            });
        };
        let idx = parse_i64(line, "a node index", idx)?;
        if idx != coords.len() as i64 + 1 {
            return Err(FormatError::Invalid {
                line,
                message: format!("node index {idx} out of order"),
            });
        }
        let coord = |tok: &str| {
            tok.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| FormatError::BadNumber {
                    line,
                    what: "a coordinate",
                    token: tok.to_owned(),
                })
        };
        coords.push((coord(x)?, coord(y)?));
    }
    Ok(coords)
}
