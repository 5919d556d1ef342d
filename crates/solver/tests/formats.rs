//! Parsers on the real benchmark files and on broken inputs.

use doorstep_solver::formats::{self, FormatError, solomon, tsplib, tsptw};
use std::path::PathBuf;

/// The instances these tests need, carried in `tests/data/` (origin in its README).
fn data(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("test instance {} not readable: {e}", path.display()))
}

/// The whole benchmark collection, outside the repository (`DOORSTEP_ROUTING_DIR` or
/// `../shared/bench/routing` next to it).
fn routing_dir() -> PathBuf {
    std::env::var_os("DOORSTEP_ROUTING_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/routing")
        })
}

fn collection(rel: &str) -> String {
    let path = routing_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the routing benchmark collection is needed here: {} not readable ({e}); \
             put the collection there or point DOORSTEP_ROUTING_DIR at it",
            path.display()
        )
    })
}

#[test]
fn tsptw_dumas_real_file() {
    let text = data("tsptw/Dumas/n20w20.001.txt");
    let inst = tsptw::parse("n20w20.001", &text).expect("parses");
    assert_eq!(inst.len(), 21);
    assert_eq!(inst.travel(0, 1), 19);
    assert_eq!(inst.travel(1, 0), 19);
    assert_eq!(inst.max_vehicles, 1);
    assert_eq!(inst.cost_scale, 1);
}

#[test]
fn tsptw_afg_with_trailing_comment() {
    let text = data("tsptw/AFG/rbg010a.tw");
    let inst = tsptw::parse("rbg010a", &text).expect("parses");
    assert_eq!(inst.len(), 11);
    assert_eq!(inst.travel(1, 0), 71);
    assert_eq!((inst.earliest[10], inst.latest[10]), (3798, 4698));
}

#[test]
fn solomon_real_file_in_tenths() {
    let text = data("solomon/C101.vrp");
    let inst = solomon::parse("C101", &text).expect("parses");
    assert_eq!(inst.len(), 101);
    assert_eq!(inst.capacity, Some(200));
    assert_eq!(inst.max_vehicles, 25);
    assert_eq!(inst.cost_scale, 10);
    assert_eq!(inst.service[0], 0);
    assert_eq!(inst.service[1], 900);
    // (40,50) -> (45,68): sqrt(25 + 324) = 18.68.. -> 186 tenths.
    assert_eq!(inst.travel(0, 1), 186);
    assert_eq!((inst.earliest[0], inst.latest[0]), (0, 12360));
}

#[test]
fn tsplib_real_file_nint() {
    let text = data("tsplib/berlin52.tsp");
    let inst = tsplib::parse("berlin52", &text).expect("parses");
    assert_eq!(inst.len(), 52);
    // (565,575) -> (25,185): 665.54.. -> 666.
    assert_eq!(inst.travel(0, 1), 666);
}

#[test]
fn every_listed_instance_parses() {
    let csv = collection("instances.csv");
    let mut parsed = 0;
    for row in csv.lines().skip(1) {
        let cols: Vec<&str> = row.split(',').collect();
        let rel = match cols[0] {
            "tsptw" => format!("tsptw/{}", cols[1]),
            "solomon" => format!("solomon/{}.vrp", cols[1]),
            _ => format!("tsplib/{}.tsp", cols[1]),
        };
        let text = collection(&rel);
        let inst = formats::parse_any(cols[1], &text).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let n: usize = cols[2].parse().expect("n");
        // instances.csv counts customers for Solomon and nodes otherwise.
        assert!(
            inst.len() == n || inst.len() == n + 1,
            "{rel}: {} nodes, csv says {n}",
            inst.len()
        );
        parsed += 1;
    }
    assert!(parsed >= 300, "instances.csv lists only {parsed} instances");
}

#[test]
fn broken_tsptw_inputs() {
    assert_eq!(
        tsptw::parse("x", "").unwrap_err(),
        FormatError::Truncated("the node count")
    );
    assert!(matches!(
        tsptw::parse("x", "3\n0 1 2\n1 0 x\n"),
        Err(FormatError::BadNumber { line: 3, .. })
    ));
    assert_eq!(
        tsptw::parse("x", "2\n0 1\n1 0\n0 10\n").unwrap_err(),
        FormatError::Truncated("a window start")
    );
    assert!(matches!(
        tsptw::parse("x", "2\n0 1\n1 0\n0 10\n5 1\n"),
        Err(FormatError::Instance(_))
    ));
    assert!(matches!(
        tsptw::parse("x", "2\n0 1\n1 0\n0 10\n0 10\n7\n"),
        Err(FormatError::Invalid { line: 6, .. })
    ));
    assert!(matches!(
        tsptw::parse("x", "-3\n"),
        Err(FormatError::Invalid { .. })
    ));
}

#[test]
fn broken_tsplib_and_solomon_inputs() {
    let geo = "NAME: x\nTYPE: TSP\nDIMENSION: 2\nEDGE_WEIGHT_TYPE: GEO\nNODE_COORD_SECTION\n1 0 0\n2 1 1\nEOF\n";
    assert!(matches!(
        tsplib::parse("x", geo),
        Err(FormatError::Unsupported { .. })
    ));
    let bad_dim = "DIMENSION: 3\nEDGE_WEIGHT_TYPE: EUC_2D\nNODE_COORD_SECTION\n1 0 0\n2 1 1\nEOF\n";
    assert!(matches!(
        tsplib::parse("x", bad_dim),
        Err(FormatError::Invalid { .. })
    ));
    let bad_coord = "EDGE_WEIGHT_TYPE: EUC_2D\nNODE_COORD_SECTION\n1 0 0\n2 1 nan\nEOF\n";
    assert!(matches!(
        tsplib::parse("x", bad_coord),
        Err(FormatError::BadNumber { .. })
    ));
    let no_tw = "CAPACITY : 10\nNODE_COORD_SECTION\n1 0 0\n2 1 1\nDEMAND_SECTION\n1 0\n2 1\nDEPOT_SECTION\n1\n-1\nEOF\n";
    assert_eq!(
        solomon::parse("x", no_tw).unwrap_err(),
        FormatError::MissingField("TIME_WINDOW_SECTION")
    );
    let short = "CAPACITY : 10\nNODE_COORD_SECTION\n1 0 0\n2 1 1\nDEMAND_SECTION\n1 0\nTIME_WINDOW_SECTION\n1 0 9\n2 0 9\nEOF\n";
    assert!(matches!(
        solomon::parse("x", short),
        Err(FormatError::Invalid { .. })
    ));
    assert!(matches!(
        formats::parse_any("x", "hello"),
        Err(FormatError::UnknownFormat(_))
    ));
}
