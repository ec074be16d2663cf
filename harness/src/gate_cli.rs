//! `dlp-harness gate [GATE_FILE]`: run the release gate (`gate.toml` by default), print a line per
//! verdict as it comes, then every change against the baseline ("sweep four_node_route
//! rocksdb/strict #7 ... bob-carol: held -> UNSAFE"). Exit 1 on any change, any `flaky` scenario
//! or anything that could not be judged; `--accept` writes this run's verdicts as the baseline
//! instead (for review in git); `--baseline FILE` compares with another file.

use std::path::PathBuf;
use std::time::Instant;

use dlp_harness::gate::{Baseline, GateFile, GateProgress, compare, html, junit, run_gate};

use crate::Exit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The gate file.
    #[arg(default_value = "gate.toml")]
    gate: PathBuf,
    /// Compare with this baseline instead of the gate file's.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Write this run's verdicts as the baseline (the gate file's, or --baseline's) instead of
    /// comparing.
    #[arg(long)]
    accept: bool,
    /// Also write this run's verdicts here (the baseline's JSON shape).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write JUnit here: a test case per verdict, a changed or flaky one failing.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write one HTML page here: the changes, then every verdict.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

pub fn main(args: Args) -> Exit {
    let gate = match GateFile::load(&args.gate) {
        Ok(gate) => gate,
        Err(e) => {
            eprintln!("invalid: {e}");
            return Exit::Invalid;
        }
    };
    let baseline_path = args
        .baseline
        .clone()
        .unwrap_or_else(|| gate.baseline.clone());
    // Read before the (long) run: a missing or broken baseline is said at once.
    let baseline = if args.accept {
        None
    } else {
        match Baseline::load(&baseline_path) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!(
                    "invalid: {e} (write one with `dlp-harness gate {} --accept`)",
                    args.gate.display()
                );
                return Exit::Invalid;
            }
        }
    };
    eprintln!(
        "gate {}: {} scenario path(s) on {}, {} sweep workload(s), {} explorer seed(s), seed {}",
        args.gate.display(),
        gate.scenario_paths.len(),
        gate.scenario_drivers
            .iter()
            .map(|d| d.name())
            .collect::<Vec<_>>()
            .join("+"),
        gate.sweep_workloads.len(),
        gate.explore_seeds,
        gate.seed
    );
    let started = Instant::now();
    let bar = crate::progress_cli::Progress::new(0);
    bar.running("the gate".to_string());
    let progress = |p: GateProgress| match p {
        GateProgress::Verdict { key, verdict } => bar.line(&format!("{verdict:<9} {key}")),
        GateProgress::Error(e) => bar.line(&format!("ERROR     {e}")),
    };
    let ran = run_gate(&gate, &progress);
    drop(bar);
    let (verdicts, errors) = match ran {
        Ok(done) => done,
        Err(e) => {
            eprintln!("invalid: {e}");
            return Exit::Invalid;
        }
    };
    let flaky: Vec<&String> = verdicts
        .iter()
        .filter(|(_, v)| v.as_str() == "flaky")
        .map(|(k, _)| k)
        .collect();
    if let Some(path) = &args.json
        && let Err(e) = Baseline::new(verdicts.clone()).write(path)
    {
        eprintln!("error: {e}");
        return Exit::Failed;
    }
    println!(
        "{} verdicts in {:.1} s",
        verdicts.len(),
        started.elapsed().as_secs_f64()
    );
    for key in &flaky {
        println!("FLAKY {key}: failed, then passed with the same seed");
    }
    for e in &errors {
        println!("ERROR {e}");
    }
    let mut failed = !flaky.is_empty() || !errors.is_empty();
    let seconds = started.elapsed().as_secs_f64();
    let changes = baseline
        .as_ref()
        .map(|b| compare(&b.verdicts, &verdicts))
        .unwrap_or_default();
    let written = [
        (
            args.junit.as_ref(),
            args.junit
                .as_ref()
                .map(|_| junit(&verdicts, &changes, &errors, seconds)),
        ),
        (
            args.html.as_ref(),
            args.html.as_ref().map(|_| {
                html(
                    &verdicts,
                    &changes,
                    &errors,
                    &baseline_path.display().to_string(),
                    seconds,
                )
            }),
        ),
    ];
    for (path, text) in written {
        if let (Some(path), Some(text)) = (path, text)
            && let Err(e) = std::fs::write(path, text)
        {
            eprintln!("error: {}: {e}", path.display());
            return Exit::Failed;
        }
    }
    match baseline {
        None => {
            if let Err(e) = Baseline::new(verdicts).write(&baseline_path) {
                eprintln!("error: {e}");
                return Exit::Failed;
            }
            println!("baseline written: {}", baseline_path.display());
        }
        Some(_) => {
            for change in &changes {
                println!("CHANGED {change}");
            }
            println!(
                "{} change(s) against {}",
                changes.len(),
                baseline_path.display()
            );
            failed |= !changes.is_empty();
        }
    }
    if failed { Exit::Failed } else { Exit::Passed }
}
