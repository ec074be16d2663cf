//! `dlp-harness points` and `dlp-harness merge`: the two commands around the one-test-per-point
//! runs of `harness/tests/shards.rs`. `points` discovers each workload's backup points and
//! prints them, writes them beside the workload (`--write`) or checks the committed list
//! (`--check`); `merge` reads the result files of any number of shards and prints (and writes as
//! JSON and HTML) the answer one run gives, exit 1 on any failure, missing or conflicting result.

use std::path::PathBuf;

use dlp_harness::run::runner::{runs_root, runtime};
use dlp_harness::shards::{MergeFilter, SHARDS_FILE, ShardsFile, merge, workload_files};
use dlp_harness::sweep::{PointList, Workload, points_path};
use dlp_node_api::Backend;

use crate::Exit;

#[derive(Debug, clap::Args)]
pub struct PointsArgs {
    /// Workloads (files with a `[sweep]` table), or directories of them.
    #[arg(default_value = "scenarios/sweeps")]
    paths: Vec<PathBuf>,
    /// Write each workload's list beside it (`<name>.points.json`).
    #[arg(long, conflicts_with = "check")]
    write: bool,
    /// Compare each committed list with the points found now; exit 1 on any difference.
    #[arg(long)]
    check: bool,
    /// Seed the workloads run with (default: the seed of --config, else 1).
    #[arg(long)]
    seed: Option<u64>,
    /// The configuration whose seed the point tests run with.
    #[arg(long, default_value = SHARDS_FILE)]
    config: PathBuf,
}

pub fn points(args: PointsArgs) -> Exit {
    let seed = match args.seed {
        Some(seed) => seed,
        None if args.config.is_file() => match ShardsFile::load(&args.config) {
            Ok(file) => file.seed,
            Err(e) => {
                eprintln!("invalid: {e}");
                return Exit::Invalid;
            }
        },
        None => 1,
    };
    let paths = match workload_files(&args.paths) {
        Ok(paths) => paths,
        Err(e) => {
            eprintln!("invalid: {e}");
            return Exit::Invalid;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start a runtime: {e}");
            return Exit::CannotStart;
        }
    };
    let mut exit = Exit::Passed;
    for path in paths {
        let workload = match Workload::load(&path) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("invalid: {e}");
                return Exit::Invalid;
            }
        };
        eprintln!(
            "{}: running it once per backend (seed {seed})",
            path.display()
        );
        // The committed interleaving is pinned when there is one (`--check` compares the same
        // run; `--write` keeps it while the workload can still be run that way, else records
        // a new one).
        let committed = PointList::load(&path)
            .ok()
            .filter(|l| l.seed == seed && !l.order.is_empty());
        let pinned = committed.as_ref().map(|l| &l.order);
        let discover = |pinned| {
            rt.block_on(PointList::discover(
                &workload,
                &[Backend::Rocksdb, Backend::Sqlite],
                seed,
                &runs_root(),
                pinned,
            ))
        };
        let found = match discover(pinned) {
            Err(e) if args.write && pinned.is_some() => {
                eprintln!(
                    "{}: the run under the committed interleaving failed ({e}); running it free \
                     to record a new one",
                    path.display()
                );
                discover(None)
            }
            found => found,
        };
        let found = match found {
            Ok(found) => found,
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::Failed;
            }
        };
        let target = points_path(&path);
        if args.write {
            if let Err(e) = std::fs::write(&target, found.to_text()) {
                eprintln!("error: cannot write {}: {e}", target.display());
                return Exit::Failed;
            }
            println!(
                "wrote {} ({})",
                target.display(),
                found
                    .points
                    .iter()
                    .map(|(b, p)| format!("{b}: {} points", p.len()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        } else if args.check {
            match PointList::load(&path) {
                Ok(committed) => match committed.differences(&found) {
                    None => println!("{}: up to date", target.display()),
                    Some(diff) => {
                        println!(
                            "{}: STALE: {diff}; rewrite with `dlp-harness points --write {}`",
                            target.display(),
                            path.display()
                        );
                        exit = Exit::Failed;
                    }
                },
                Err(e) => {
                    println!("{e}");
                    exit = Exit::Failed;
                }
            }
        } else {
            for (backend, points) in &found.points {
                for p in points {
                    println!(
                        "{} {backend} #{:<3} {:<40} {:?}",
                        workload.name(),
                        p.index,
                        p.label(),
                        p.numbers
                    );
                }
            }
        }
    }
    exit
}

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Result files, or directories holding them (searched recursively): one per shard, or all
    /// copied into one.
    #[arg(required = true)]
    results: Vec<PathBuf>,
    /// The configuration the shards ran (what tests exist).
    #[arg(long, default_value = SHARDS_FILE)]
    config: PathBuf,
    /// Only the tests under this policy are expected (sweep points and explorer seeds).
    #[arg(long, value_enum)]
    policy: Option<crate::PolicyChoice>,
    /// Write the merged answer as JSON here (one sweep report per workload, the explorer's
    /// seeds, what is missing or conflicting, every verdict keyed as the gate keys them).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write it as one HTML page here.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Also merge these results (one unpartitioned run's, say) and compare: exit 1 unless both
    /// judge every point and seed the same (the point's own channel always; another channel
    /// where its backup holds the same numbers in both, as the backends are compared).
    #[arg(long, value_name = "DIR")]
    same_as: Vec<PathBuf>,
}

pub fn merge_main(args: MergeArgs) -> Exit {
    let file = match ShardsFile::load(&args.config) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("invalid: {e}");
            return Exit::Invalid;
        }
    };
    let policy = match args.policy.map(|p| p.policies()) {
        None => None,
        Some(list) if list.len() == 1 => Some(list[0]),
        Some(_) => None,
    };
    let merged = merge(&file, &args.results, &MergeFilter { policy });
    print!("{}", merged.render_text());
    if let Some(path) = &args.json {
        let written = serde_json::to_string_pretty(&merged)
            .map_err(|e| e.to_string())
            .and_then(|text| std::fs::write(path, text).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("error: cannot write {}: {e}", path.display());
            return Exit::Failed;
        }
        eprintln!("merged report: {}", path.display());
    }
    if let Some(path) = &args.html {
        if let Err(e) = std::fs::write(path, merged.render_html()) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return Exit::Failed;
        }
        eprintln!("merged report: {}", path.display());
    }
    if !args.same_as.is_empty() {
        let other = merge(&file, &args.same_as, &MergeFilter { policy });
        let differences = merged.differences(&other);
        let shown: Vec<String> = args
            .same_as
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        if differences.is_empty() {
            println!(
                "SAME: {} point results and {} explorer seed runs judged as in {}",
                merged
                    .reports
                    .iter()
                    .map(|r| r.results.len())
                    .sum::<usize>(),
                merged.explore.len(),
                shown.join(" ")
            );
        } else {
            println!(
                "DIFFERENT from {}: {} differences",
                shown.join(" "),
                differences.len()
            );
            for d in &differences {
                println!("  {d}");
            }
            return Exit::Failed;
        }
    }
    if merged.failed() {
        Exit::Failed
    } else {
        Exit::Passed
    }
}
