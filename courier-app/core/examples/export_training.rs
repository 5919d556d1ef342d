//! Exports delivery attempts of the synthetic world (`courier_core::reroute::world`) as CSV for
//! `models/train.py`: one row per stop and day, attempted at a random time of the courier's day.
//!
//! `cargo run --release -p courier-core --example export_training -- --days 60 --routes 40 --seed 7 --out models/data/train.csv`

use std::io::{BufWriter, Write};

use courier_core::reroute::features::{self, FEATURES};
use courier_core::reroute::scenario::Scenario;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Args {
    days: u32,
    routes: u32,
    seed: u64,
    out: String,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        days: 60,
        routes: 40,
        seed: 7,
        out: "models/data/train.csv".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: std::num::ParseIntError| format!("{flag}: {e}");
        match flag.as_str() {
            "--days" => a.days = value.parse().map_err(bad)?,
            "--routes" => a.routes = value.parse().map_err(bad)?,
            "--seed" => a.seed = value.parse().map_err(bad)?,
            "--out" => a.out = value,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse()?;
    if let Some(dir) = std::path::Path::new(&args.out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = BufWriter::new(std::fs::File::create(&args.out)?);
    writeln!(out, "day,{},success", FEATURES.join(","))?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut rows = 0u64;
    for day in 0..args.days {
        for route in 0..args.routes {
            let sc = Scenario::generate(args.seed, day, route);
            for (i, stop) in sc.input.stops.iter().enumerate() {
                let t = rng.random_range(sc.input.now_s..sc.input.day_end_s);
                let row = features::row(&stop.signals, &sc.input.context(i), t);
                let success = rng.random_bool(f64::from(sc.p_true(i, t)));
                let cols: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
                writeln!(out, "{day},{},{}", cols.join(","), u8::from(success))?;
                rows += 1;
            }
        }
    }
    out.flush()?;
    eprintln!("wrote {rows} rows to {}", args.out);
    Ok(())
}
