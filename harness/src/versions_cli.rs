//! `dlp-harness versions [list | build | corpus | compatibility]`: the named earlier builds of
//! versions.toml. `list` says which are built; `build` builds the missing ones into the cache, a
//! progress line per version (its build log named before the long wait), then the time each
//! took; `corpus` regenerates the corpus of old backups with them; `compatibility` writes
//! COMPATIBILITY.md from the gate's verdicts.

use std::path::PathBuf;

use dlp_harness::versions::build::{self, BuildPlan, Outcome};
use dlp_harness::versions::{Catalog, profile_dir};
use dlp_node_api::Backend;

use crate::Exit;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Print every named version, its commit, what it is, and whether it is built.
    List,
    /// Build the named versions (all when none is named) that are not built yet.
    Build {
        /// Version names (versions.toml).
        names: Vec<String>,
        /// The git repository holding the commits (default: the one around the current
        /// directory).
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,
    },
    /// Write COMPATIBILITY.md from the gate's verdicts (the committed baseline by default) and
    /// the cross-version scenarios; with --check, only say whether the committed page is
    /// what they generate.
    Compatibility {
        /// The gate's verdicts (a baseline file, or a gate run's --json).
        #[arg(long, value_name = "FILE", default_value = "gate-baseline.json")]
        verdicts: PathBuf,
        /// The cross-version scenarios.
        #[arg(long, value_name = "DIR", default_value = "scenarios/versions")]
        scenarios: PathBuf,
        #[arg(long, value_name = "FILE", default_value = "COMPATIBILITY.md")]
        out: PathBuf,
        /// Compare with the file instead of writing it (exit 1 when it differs).
        #[arg(long)]
        check: bool,
    },
    /// Regenerate the corpus of old backups (fixtures/backups/<version>/<backend>/) with the
    /// named versions (all when none is named; each must be built), on both backends.
    Corpus {
        names: Vec<String>,
        /// Where the corpus goes.
        #[arg(long, value_name = "DIR", default_value = "fixtures/backups")]
        out: PathBuf,
    },
}

pub fn main(args: Args) -> Exit {
    let catalog = match Catalog::committed() {
        Ok(catalog) => catalog,
        Err(e) => {
            eprintln!("invalid: {e}");
            return Exit::Invalid;
        }
    };
    let cache = match Catalog::cache_dir() {
        Ok(cache) => cache,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::CannotStart;
        }
    };
    match args.action {
        Action::List => {
            for v in &catalog.versions {
                let state = if build::is_built(&cache, v) {
                    "built"
                } else {
                    "not built"
                };
                println!("{:<12} {}  {:<9}  {}", v.name, v.short(), state, v.about);
            }
            println!("cache: {}", cache.display());
            Exit::Passed
        }
        Action::Build { names, repo } => build_versions(catalog, cache, names, repo),
        Action::Corpus { names, out } => corpus(catalog, names, out),
        Action::Compatibility {
            verdicts,
            scenarios,
            out,
            check,
        } => compatibility(catalog, &verdicts, &scenarios, &out, check),
    }
}

fn corpus(catalog: &Catalog, names: Vec<String>, out: PathBuf) -> Exit {
    let names: Vec<String> = if names.is_empty() {
        catalog.versions.iter().map(|v| v.name.clone()).collect()
    } else {
        names
    };
    let runtime = match dlp_harness::run::runner::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::CannotStart;
        }
    };
    let runs = match tempfile::Builder::new().prefix("dlp-corpus-").tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("error: a run directory: {e}");
            return Exit::CannotStart;
        }
    };
    for name in &names {
        for backend in [Backend::Rocksdb, Backend::Sqlite] {
            let run_dir = runs.path().join(format!("{name}-{backend}"));
            let started = std::time::Instant::now();
            let made = runtime.block_on(dlp_harness::corpus::generate(
                name,
                backend,
                &out,
                &run_dir,
                &mut |line| println!("corpus: {line}"),
            ));
            match made {
                Ok(description) => println!(
                    "corpus: {name} {backend}: {} backups and the peer in {:.1} s",
                    description.restored.len(),
                    started.elapsed().as_secs_f64()
                ),
                Err(e) => {
                    let kept = runs.keep();
                    eprintln!(
                        "corpus: {name} {backend}: {e}\n(run directories kept in {})",
                        kept.display()
                    );
                    return Exit::Failed;
                }
            }
        }
    }
    Exit::Passed
}

fn build_versions(
    catalog: &Catalog,
    cache: PathBuf,
    names: Vec<String>,
    repo: Option<PathBuf>,
) -> Exit {
    let chosen = if names.is_empty() {
        catalog.versions.iter().collect::<Vec<_>>()
    } else {
        let mut chosen = Vec::new();
        for name in &names {
            match catalog.get(name) {
                Ok(v) => chosen.push(v),
                Err(e) => {
                    eprintln!("invalid: {e}");
                    return Exit::Invalid;
                }
            }
        }
        chosen
    };
    let repo = match repo {
        Some(repo) => repo,
        None => match repository_root() {
            Ok(root) => root,
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::CannotStart;
            }
        },
    };
    let rocksdb_archive = profile_dir()
        .ok()
        .and_then(|dir| build::workspace_rocksdb_archive(&dir));
    match &rocksdb_archive {
        Some(archive) => println!("versions: linking RocksDB from {}", archive.display()),
        None => println!("versions: no RocksDB archive of this workspace; each build compiles it"),
    }
    let plan = BuildPlan {
        repo,
        cache,
        rocksdb_archive,
    };
    let total = chosen.len();
    for (i, v) in chosen.into_iter().enumerate() {
        let label = format!("[{}/{total}] {} ({})", i + 1, v.name, v.short());
        if !build::is_built(&plan.cache, v) {
            println!(
                "{label}: building (log: {})",
                build::log_path(&plan.cache, v).display()
            );
        }
        match build::build(v, &plan) {
            Ok(Outcome::Cached) => println!("{label}: cached"),
            Ok(Outcome::Built {
                seconds,
                shared_rocksdb,
            }) => println!(
                "{label}: built in {seconds:.1} s{}",
                if shared_rocksdb {
                    " (RocksDB linked, not compiled)"
                } else {
                    ""
                }
            ),
            Err(e) => {
                eprintln!("{label}: {e}");
                return Exit::Failed;
            }
        }
    }
    Exit::Passed
}

/// `git rev-parse --show-toplevel` of the current directory.
fn repository_root() -> Result<PathBuf, String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err("not inside a git repository: pass --repo DIR".into());
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

fn compatibility(
    catalog: &Catalog,
    verdicts: &std::path::Path,
    scenarios: &std::path::Path,
    out: &std::path::Path,
    check: bool,
) -> Exit {
    let baseline = match dlp_harness::gate::Baseline::load(verdicts) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("invalid: {e}");
            return Exit::Invalid;
        }
    };
    let order = catalog.names();
    let page = match dlp_harness::gate::compatibility_page(&baseline.verdicts, scenarios, &order) {
        Ok(page) => page,
        Err(e) => {
            eprintln!("invalid: {e}");
            return Exit::Invalid;
        }
    };
    if check {
        let committed = std::fs::read_to_string(out).unwrap_or_default();
        if committed == page {
            println!("{} is what the gate's verdicts generate", out.display());
            return Exit::Passed;
        }
        eprintln!(
            "{} is not what {} generates: run `dlp-harness versions compatibility`",
            out.display(),
            verdicts.display()
        );
        return Exit::Failed;
    }
    match std::fs::write(out, page) {
        Ok(()) => {
            println!("wrote {}", out.display());
            Exit::Passed
        }
        Err(e) => {
            eprintln!("error: {}: {e}", out.display());
            Exit::Failed
        }
    }
}
