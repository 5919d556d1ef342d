//! Routing benchmark: `cargo bench -p doorstep-solver --bench routing [-- OPTIONS]`.
//!
//! Solves every instance of `shared/bench/routing` (listed in its `instances.csv`) at fixed
//! budgets, one thread, seed 0, checks each answer with the independent checker, and runs
//! PyVRP on the same files at the same budgets (`bench/pyvrp_driver.py`, one interpreter for
//! the whole batch). Prints a markdown table and writes `target/bench/routing.json`.
//!
//! Options: `--families Dumas,OhlmannThomas,solomon,...` (groups to run), `--limit N`
//! (instances per group), `--no-pyvrp`, `--seed S`, `--routing-dir DIR`, `--python EXE`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use doorstep_solver::budget::{Budget, Clock, WallClock};
use doorstep_solver::{checker, formats, solve};
use serde_json::{Value, json};

/// (group, path prefix in instances.csv, budgets in ms).
const GROUPS: &[(&str, &str, &[u64])] = &[
    ("Dumas", "tsptw,Dumas/", &[10]),
    (
        "GendreauDumasExtended",
        "tsptw,GendreauDumasExtended/",
        &[10],
    ),
    ("OhlmannThomas", "tsptw,OhlmannThomas/", &[10, 100]),
    ("AFG", "tsptw,AFG/", &[10]),
    ("solomon", "solomon,", &[100, 1000]),
    ("tsplib", "tsplib,", &[100]),
];

struct Args {
    families: Option<Vec<String>>,
    limit: usize,
    pyvrp: bool,
    seed: u64,
    dir: PathBuf,
    python: String,
}

fn parse_args() -> Args {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut a = Args {
        families: None,
        limit: usize::MAX,
        pyvrp: true,
        seed: 0,
        dir: manifest.join("../../../shared/bench/routing"),
        python: "python3".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--families" => {
                a.families = it.next().map(|s| s.split(',').map(String::from).collect())
            }
            "--limit" => a.limit = it.next().and_then(|s| s.parse().ok()).unwrap_or(usize::MAX),
            "--no-pyvrp" => a.pyvrp = false,
            "--seed" => a.seed = it.next().and_then(|s| s.parse().ok()).unwrap_or(0),
            "--routing-dir" => a.dir = it.next().map(PathBuf::from).unwrap_or(a.dir),
            "--python" => a.python = it.next().unwrap_or(a.python),
            _ => {} // cargo bench passes `--bench`
        }
    }
    a
}

struct Job {
    group: &'static str,
    file: String,
    path: PathBuf,
    bks: f64,
    budget_ms: u64,
}

#[derive(Default, Clone)]
struct Run {
    valid: bool,
    cost: f64,
    elapsed_ms: f64,
}

fn main() {
    let args = parse_args();
    let csv = match std::fs::read_to_string(args.dir.join("instances.csv")) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot read {}/instances.csv: {e}", args.dir.display());
            std::process::exit(1);
        }
    };
    let mut jobs = Vec::new();
    for &(group, prefix, budgets) in GROUPS {
        if args
            .families
            .as_ref()
            .is_some_and(|f| !f.iter().any(|g| g == group))
        {
            continue;
        }
        let rows: Vec<&str> = csv
            .lines()
            .filter(|l| l.starts_with(prefix))
            .take(args.limit)
            .collect();
        for &budget_ms in budgets {
            for row in &rows {
                let cols: Vec<&str> = row.split(',').collect();
                let (family, file, bks) = (cols[0], cols[1], cols[3].parse().unwrap_or(f64::NAN));
                let path = match family {
                    "tsptw" => args.dir.join("tsptw").join(file),
                    "solomon" => args.dir.join("solomon").join(format!("{file}.vrp")),
                    _ => args.dir.join("tsplib").join(format!("{file}.tsp")),
                };
                jobs.push(Job {
                    group,
                    file: file.to_owned(),
                    path,
                    bks,
                    budget_ms,
                });
            }
        }
    }
    eprintln!("{} runs; ours first, then PyVRP", jobs.len());

    let ours: Vec<Run> = jobs.iter().map(|j| run_ours(j, args.seed)).collect();
    let theirs: Vec<Option<Run>> = if args.pyvrp {
        run_pyvrp(&args, &jobs)
    } else {
        vec![None; jobs.len()]
    };
    report(&jobs, &ours, &theirs, &args);
}

fn run_ours(job: &Job, seed: u64) -> Run {
    let Ok(text) = std::fs::read_to_string(&job.path) else {
        return Run::default();
    };
    let Ok(inst) = formats::parse_any(&job.file, &text) else {
        return Run::default();
    };
    let clock = WallClock::start();
    let sol = solve(
        &inst,
        &Budget::time(Duration::from_millis(job.budget_ms), &clock),
        seed,
    );
    let elapsed_ms = clock.elapsed().as_secs_f64() * 1e3;
    let rep = checker::check(&inst, &sol.routes, Some(sol.cost));
    Run {
        valid: rep.valid(),
        cost: inst.published_cost(rep.cost),
        elapsed_ms,
    }
}

fn run_pyvrp(args: &Args, jobs: &[Job]) -> Vec<Option<Run>> {
    let list: Vec<Value> = jobs
        .iter()
        .map(|j| json!({"path": j.path, "budget_ms": j.budget_ms, "seed": args.seed}))
        .collect();
    let out_dir = target_dir().join("bench");
    let _ = std::fs::create_dir_all(&out_dir);
    let job_file = out_dir.join("pyvrp_jobs.json");
    if std::fs::write(&job_file, Value::Array(list).to_string()).is_err() {
        return vec![None; jobs.len()];
    }
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/pyvrp_driver.py");
    let output = Command::new(&args.python)
        .arg(&driver)
        .arg(&job_file)
        .output();
    let stdout = match output {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => {
            eprintln!(
                "PyVRP driver failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return vec![None; jobs.len()];
        }
        Err(e) => {
            eprintln!("cannot run {}: {e}", args.python);
            return vec![None; jobs.len()];
        }
    };
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    jobs.iter()
        .zip(lines.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|(job, line)| {
            let line = line?;
            let routes: Vec<Vec<usize>> =
                serde_json::from_value(line.get("routes")?.clone()).ok()?;
            let text = std::fs::read_to_string(&job.path).ok()?;
            let inst = formats::parse_any(&job.file, &text).ok()?;
            // PyVRP's own cost is not trusted: the checker recomputes it.
            let rep = checker::check(&inst, &routes, None);
            Some(Run {
                valid: rep.valid(),
                cost: inst.published_cost(rep.cost),
                elapsed_ms: line.get("elapsed_ms")?.as_f64()?,
            })
        })
        .collect()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[idx]
}

fn summary(runs: &[(&Job, &Run)]) -> Value {
    let valid = runs.iter().filter(|(_, r)| r.valid).count();
    let mut gaps: Vec<f64> = runs
        .iter()
        .filter(|(_, r)| r.valid)
        .map(|(j, r)| 100.0 * (r.cost - j.bks) / j.bks)
        .collect();
    gaps.sort_by(f64::total_cmp);
    let mut ms: Vec<f64> = runs.iter().map(|(_, r)| r.elapsed_ms).collect();
    ms.sort_by(f64::total_cmp);
    json!({
        "runs": runs.len(),
        "valid_pct": 100.0 * valid as f64 / runs.len().max(1) as f64,
        "gap_median_pct": quantile(&gaps, 0.5),
        "gap_p90_pct": quantile(&gaps, 0.9),
        "gap_max_pct": gaps.last().copied().unwrap_or(f64::NAN),
        "wall_ms_p50": quantile(&ms, 0.5),
        "wall_ms_max": ms.last().copied().unwrap_or(f64::NAN),
    })
}

fn report(jobs: &[Job], ours: &[Run], theirs: &[Option<Run>], args: &Args) {
    let mut groups: BTreeMap<(usize, u64), Vec<usize>> = BTreeMap::new();
    for (k, j) in jobs.iter().enumerate() {
        let order = GROUPS.iter().position(|g| g.0 == j.group).unwrap_or(0);
        groups.entry((order, j.budget_ms)).or_default().push(k);
    }
    // "TSPTW all" at 10 ms: the brief's headline number.
    let tsptw10: Vec<usize> = (0..jobs.len())
        .filter(|&k| GROUPS.iter().take(4).any(|g| g.0 == jobs[k].group) && jobs[k].budget_ms == 10)
        .collect();
    let mut rows = Vec::new();
    let mut table = String::from(
        "| family | budget | runs | valid % | median gap % | p90 gap % | max gap % | PyVRP valid % | PyVRP median gap % | ours/PyVRP median | ours/PyVRP mean |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut all: Vec<(String, u64, Vec<usize>)> = groups
        .into_iter()
        .map(|((o, b), ks)| (GROUPS[o].0.to_string(), b, ks))
        .collect();
    if !tsptw10.is_empty() {
        all.push(("TSPTW all".into(), 10, tsptw10));
    }
    for (name, budget, ks) in all {
        let o: Vec<(&Job, &Run)> = ks.iter().map(|&k| (&jobs[k], &ours[k])).collect();
        let t: Vec<(&Job, &Run)> = ks
            .iter()
            .filter_map(|&k| theirs[k].as_ref().map(|r| (&jobs[k], r)))
            .collect();
        let so = summary(&o);
        let st = summary(&t);
        let mut ratios: Vec<f64> = ks
            .iter()
            .filter_map(|&k| {
                let t = theirs[k].as_ref()?;
                (ours[k].valid && t.valid && t.cost > 0.0).then(|| ours[k].cost / t.cost)
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        let mean = ratios.iter().sum::<f64>() / ratios.len().max(1) as f64;
        let f = |v: &Value, k: &str| v[k].as_f64().map_or("–".into(), |x| format!("{x:.2}"));
        table.push_str(&format!(
            "| {name} | {budget} ms | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            ks.len(),
            f(&so, "valid_pct"),
            f(&so, "gap_median_pct"),
            f(&so, "gap_p90_pct"),
            f(&so, "gap_max_pct"),
            if t.is_empty() {
                "–".into()
            } else {
                f(&st, "valid_pct")
            },
            if t.is_empty() {
                "–".into()
            } else {
                f(&st, "gap_median_pct")
            },
            if ratios.is_empty() {
                "–".into()
            } else {
                format!("{:.4}", quantile(&ratios, 0.5))
            },
            if ratios.is_empty() {
                "–".into()
            } else {
                format!("{mean:.4}")
            },
        ));
        rows.push(json!({"family": name, "budget_ms": budget, "ours": so, "pyvrp": if t.is_empty() { Value::Null } else { st },
            "ratio_median": quantile(&ratios, 0.5), "ratio_mean": mean}));
    }
    let per_instance: Vec<Value> = jobs
        .iter()
        .zip(ours.iter().zip(theirs))
        .map(|(j, (o, t))| {
            json!({"group": j.group, "instance": j.file, "budget_ms": j.budget_ms, "best_known": j.bks,
                "ours": {"valid": o.valid, "cost": o.cost, "elapsed_ms": o.elapsed_ms},
                "pyvrp": t.as_ref().map(|t| json!({"valid": t.valid, "cost": t.cost, "elapsed_ms": t.elapsed_ms}))})
        })
        .collect();
    println!("{table}");
    let out = target_dir().join("bench/routing.json");
    let _ = std::fs::create_dir_all(target_dir().join("bench"));
    let doc = json!({"seed": args.seed, "summary": rows, "instances": per_instance});
    match std::fs::write(&out, serde_json::to_string_pretty(&doc).unwrap_or_default()) {
        Ok(()) => eprintln!("wrote {}", out.display()),
        Err(e) => eprintln!("cannot write {}: {e}", out.display()),
    }
}
