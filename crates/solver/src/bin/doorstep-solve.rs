//! `doorstep-solve --instance FILE --budget-ms N [--seed S]`: the solver CLI on its own
//! (the same output as `doorstep-sim solve`).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut instance: Option<PathBuf> = None;
    let mut budget_ms = 1000u64;
    let mut seed = 0u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        let ok = match (arg.as_str(), value) {
            ("--instance", Some(v)) => {
                instance = Some(PathBuf::from(v));
                true
            }
            ("--budget-ms", Some(v)) => v.parse().map(|v| budget_ms = v).is_ok(),
            ("--seed", Some(v)) => v.parse().map(|v| seed = v).is_ok(),
            _ => false,
        };
        if !ok {
            eprintln!("usage: doorstep-solve --instance FILE --budget-ms N [--seed S]");
            return ExitCode::from(2);
        }
    }
    let Some(instance) = instance else {
        eprintln!("usage: doorstep-solve --instance FILE --budget-ms N [--seed S]");
        return ExitCode::from(2);
    };
    match doorstep_solver::cli::run_solve(&instance, budget_ms, seed) {
        Ok(out) => match serde_json::to_string(&out) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
