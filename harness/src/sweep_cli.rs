//! `dlp-harness sweep`: parse the options, run the sweep with a line per point (under a progress
//! bar on a terminal), print the tables and summary, write the JSON report, the HTML page and
//! regression files.

use std::path::PathBuf;

use dlp_harness::run::runner::runs_root;
use dlp_harness::sweep::{
    DamageConfig, JudgeOptions, PointList, Progress, SweepConfig, Workload, render_html,
    render_text, sweep, write_regressions,
};

use crate::{BackendArg, DriverArg, Exit, PolicyArg, PolicyChoice, seed};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A workload: a scenario file with `[sweep] node = "..."`.
    workload: PathBuf,
    #[command(flatten)]
    backend: BackendArg,
    #[command(flatten)]
    policy: PolicyArg,
    #[command(flatten)]
    driver: DriverArg,
    /// Seed (default $DLP_HARNESS_SEED, else 1: a sweep is a fixed experiment).
    #[arg(long)]
    seed: Option<u64>,
    /// Points run at the same time.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Only these backup points (1-based, comma separated). Not with --damage (use --points).
    #[arg(long, value_delimiter = ',', conflicts_with = "damage")]
    only: Vec<usize>,
    /// Write the machine-readable report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the tables as one self-contained HTML page here: UNSAFE, LOST, MISMATCH and ERROR
    /// marked, each point linking to its generated scenario and, if kept, its run's report.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write each distinct UNSAFE point under fiber as a pair of regression scenarios here.
    #[arg(long)]
    write_regressions: Option<PathBuf>,
    /// Keep every run directory, not only failed points'.
    #[arg(long)]
    keep: bool,
    /// The damage sweep: at each backup point, damage every file of the backup (flip, truncate,
    /// delete, zero, swap; seeded places), restore, and classify each case as refused, benign
    /// or SILENT (exit 1 on any SILENT).
    #[arg(long)]
    damage: bool,
    /// With --damage: places per file for flip, truncate and zero.
    #[arg(long, default_value_t = 3, requires = "damage", value_parser = clap::value_parser!(u16).range(1..=64))]
    places: u16,
    /// With --damage: try a seeded sample of this many backup points (default: all).
    #[arg(long, requires = "damage", value_parser = clap::value_parser!(u16).range(1..))]
    points: Option<u16>,
    /// The judge closes every channel the nodes left held (audit failed, nobody closed it) on
    /// the peer's behalf, as before liveness was judged: verdict `held` instead of FROZEN. For
    /// comparison only; by default the judge never acts for the nodes.
    #[arg(long, conflicts_with = "damage")]
    judge_closes_held: bool,
    /// With --damage: rewrite each damaged backup's manifest without digests and restore it
    /// with --accept-undigested-backup. The proof that the sweep finds silent damage; never
    /// for gating a release.
    #[arg(long, requires = "damage")]
    bypass_digests: bool,
}

pub fn main(args: Args) -> Exit {
    let seed = match seed(args.seed, Some(1)) {
        Ok(seed) => seed,
        Err(exit) => return exit,
    };
    let driver = args.driver.kind();
    let workload = match Workload::load(&args.workload)
        .and_then(|w| w.check_capabilities(driver.capabilities()).map(|()| w))
    {
        Ok(w) => w,
        Err(e) => {
            eprintln!("invalid: {e}");
            return Exit::Invalid;
        }
    };
    // The interleaving committed with the workload's points (same seed) is pinned, so the
    // sweep is the run the committed points and SWEEP.md describe; else the first discovery
    // records one.
    let workload = match PointList::load(&args.workload) {
        Ok(list) if list.seed == seed && !list.order.is_empty() => {
            eprintln!(
                "pinning the interleaving committed in {}",
                dlp_harness::sweep::points_path(&args.workload).display()
            );
            workload.pinned(list.order)
        }
        _ => workload,
    };
    dlp_harness::driver::keep_containers(args.keep);
    if args.damage {
        let config = DamageConfig {
            backends: args.backend.backends(),
            driver,
            seed,
            places: usize::from(args.places),
            points: args.points.map(usize::from),
            bypass_digests: args.bypass_digests,
            jobs: args.jobs,
            keep: args.keep,
            runs_root: runs_root(),
        };
        let outputs = crate::damage_cli::Outputs {
            json: args.json,
            html: args.html,
            regressions: args.write_regressions,
        };
        return crate::damage_cli::main(&workload, config, outputs);
    }
    let config = SweepConfig {
        backends: args.backend.backends(),
        policies: args.policy.or(PolicyChoice::All).policies(),
        driver,
        seed,
        jobs: args.jobs,
        keep: args.keep,
        only: args.only,
        runs_root: runs_root(),
        judge: JudgeOptions {
            judge_closes_held: args.judge_closes_held,
            ..JudgeOptions::default()
        },
    };
    eprintln!(
        "sweeping {} (node {}) on {} x {}, {} driver, seed {seed}, {} at a time",
        args.workload.display(),
        workload.node,
        config
            .backends
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join("+"),
        config
            .policies
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("+"),
        driver.name(),
        config.jobs
    );
    let runtime = match dlp_harness::run::runner::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start a runtime: {e}");
            return Exit::CannotStart;
        }
    };
    let bar = crate::progress_cli::Progress::new(0);
    bar.running(format!("{}: finding the backup points", workload.name()));
    let progress = |p: Progress| match p {
        Progress::Discovered { backend, points } => {
            bar.line(&format!("{backend}: {points} backup points"));
        }
        Progress::PointDone {
            done,
            total,
            result,
        } => {
            bar.set_total(total);
            bar.running(workload.name());
            bar.line(&format!(
                "[{done:>4}/{total}] {}/{} #{:<3} {:<40} {} ({:.2} s)",
                result.backend,
                result.policy,
                result.point.index,
                result.point.label(),
                result.verdict(),
                result.elapsed_ms as f64 / 1000.0
            ));
            if let Some(error) = &result.error {
                bar.line(&format!("         {}", error.replace('\n', "\n         ")));
            }
            bar.advance();
        }
    };
    let swept = runtime.block_on(sweep(&workload, &config, &progress));
    drop(bar);
    let report = match swept {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::of_sweep(&e);
        }
    };
    drop(runtime);
    print!("{}", render_text(&report));
    println!(
        "{} point runs in {:.1} s",
        report.results.len(),
        report.elapsed_ms as f64 / 1000.0
    );
    if let Some(path) = &args.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|text| std::fs::write(path, text).map_err(|e| e.to_string()));
        match written {
            Ok(()) => eprintln!("report: {}", path.display()),
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                return Exit::Failed;
            }
        }
    }
    if let Some(path) = &args.html {
        match std::fs::write(path, render_html(&report, &workload)) {
            Ok(()) => eprintln!("report: {}", path.display()),
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                return Exit::Failed;
            }
        }
    }
    if let Some(dir) = &args.write_regressions {
        match write_regressions(&report, &workload, dir) {
            Ok(files) => {
                for f in files {
                    eprintln!("wrote {}", f.display());
                }
            }
            Err(e) => {
                eprintln!("error: writing regressions: {e}");
                return Exit::Failed;
            }
        }
    }
    if report.failed() {
        Exit::Failed
    } else {
        Exit::Passed
    }
}
