//! The heavy work as tests: every sweep point and every explorer seed of a configured range is
//! one test (`harness/tests/shards.rs`), so nextest can spread them over machines
//! (`cargo nextest archive` once, `--partition hash:k/n` on each), and one command merges what
//! the machines found into the answer a single run gives (`dlp-harness merge`).
//!
//! Why tests and not a scheduler of our own: nextest already archives, partitions, retries,
//! times out, reports JUnit and filters by name; a CI matrix of runners already exists. What
//! it needs from us is a test list that is fast and the same on every machine, so the points
//! come from committed lists (`sweep::PointList`), never from running a workload at list time.
//!
//! - `shards.toml` (this file's [`ShardsFile`]) names the workloads, the policies and the
//!   explorer's seed range; [`ShardsFile::tests`] lists the tests with their names.
//! - `run.rs` runs one test and makes its [`Record`] (the verdict, and why the test failed).
//! - `record.rs` writes and reads the result files, one per test.
//! - `merge.rs` merges result files from any number of shards: per workload the sweep report a
//!   single run gives, the explorer's seeds, and what is missing, stale or contradictory.

mod merge;
mod record;
mod render;
mod run;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dlp_node_api::{AuditPolicy, Backend};
use serde::Deserialize;

use crate::explore::ScheduleSpec;
use crate::sweep::{BackupPoint, PointList, PointRules, Workload};

pub use merge::{MergeFilter, Merged, merge};
pub use record::{Outcome, RESULTS_ENV, Record, read_records};
pub use run::run_test;

/// The default configuration file, at the workspace's root.
pub const SHARDS_FILE: &str = "shards.toml";

/// Most explorer seeds one configuration lists (each is a test per backend), and most steps a
/// schedule of them has: bounds on what a listing may build.
const MAX_SEEDS: u64 = 10_000;
const MAX_STEPS: usize = 1_000;

/// Both backends, in the sweep's order.
const BACKENDS: [Backend; 2] = [Backend::Rocksdb, Backend::Sqlite];

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ShardsError {
    #[error("{}: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },
}

/// `shards.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default = "one")]
    seed: u64,
    sweep: Option<RawSweep>,
    explore: Option<RawExplore>,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    /// Workload files, or directories of them (each `*.toml` in it).
    workloads: Vec<PathBuf>,
    policies: Vec<AuditPolicy>,
    /// Workloads (by name) whose revoked resumes need no penalty proof (see [`PointRules`]).
    #[serde(default)]
    no_penalty_proof: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExplore {
    first_seed: u64,
    seeds: u64,
    steps: usize,
    policy: AuditPolicy,
}

/// The parsed configuration: what is a test.
#[derive(Debug, Clone)]
pub struct ShardsFile {
    pub path: PathBuf,
    /// The seed every sweep point runs with (the point lists were discovered with it).
    pub seed: u64,
    /// Workload files, directories expanded, sorted.
    pub workloads: Vec<PathBuf>,
    pub policies: Vec<AuditPolicy>,
    pub no_penalty_proof: Vec<String>,
    /// The explorer's seeds, each on both backends.
    pub explore: Option<ExploreRange>,
}

/// The explorer's configured range.
#[derive(Debug, Clone, Copy)]
pub struct ExploreRange {
    pub first_seed: u64,
    pub seeds: u64,
    pub steps: usize,
    pub policy: AuditPolicy,
}

/// One test.
#[derive(Debug, Clone)]
pub enum ShardTest {
    /// One backup point of a workload, on one backend under one policy.
    Sweep {
        workload: Arc<Workload>,
        backend: Backend,
        policy: AuditPolicy,
        point: BackupPoint,
        rules: PointRules,
    },
    /// One explorer seed on one backend.
    Explore {
        spec: ScheduleSpec,
        backend: Backend,
    },
}

impl ShardTest {
    /// The test's name: `sweep/<workload>/<NN>-<step>#<nth>-<channel>@<backend>/<policy>`
    /// (`sweep/two_node_direct/14-received:RevokeAndAck#5-ab@rocksdb/strict`), or
    /// `explore/seed-<NNN>@<backend>/<policy>`.
    pub fn name(&self) -> String {
        match self {
            ShardTest::Sweep {
                workload,
                backend,
                policy,
                point,
                ..
            } => format!(
                "sweep/{}/{:02}-{}#{}-{}@{backend}/{policy}",
                workload.name(),
                point.index,
                point.step,
                point.nth,
                point.channel
            ),
            ShardTest::Explore { spec, backend } => {
                format!("explore/seed-{:03}@{backend}/{}", spec.seed, spec.policy)
            }
        }
    }
}

/// Workload files: each path a file, or a directory whose `*.toml` files are taken; sorted, each
/// once (a file named and also in a named directory is one workload).
pub fn workload_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries =
                std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
            out.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "toml")),
            );
        } else if path.is_file() {
            out.push(path.clone());
        } else {
            return Err(format!(
                "{} is neither a file nor a directory",
                path.display()
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    out.sort();
    out.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    Ok(out)
}

/// A configured entry that yields no tests (a workload that does not load, a missing or
/// unreadable point list): listed as a failing test of its own, so it is never silently lost.
#[derive(Debug, Clone)]
pub struct Broken {
    pub name: String,
    pub why: String,
}

impl ShardsFile {
    pub fn load(path: &Path) -> Result<Self, ShardsError> {
        let text = std::fs::read_to_string(path).map_err(|e| ShardsError::Invalid {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        Self::parse(path, &text)
    }

    /// Parse; relative paths are relative to the file's directory.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ShardsError> {
        let invalid = |detail: String| ShardsError::Invalid {
            path: path.to_path_buf(),
            detail,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut workloads = Vec::new();
        let (mut policies, mut no_penalty_proof) = (Vec::new(), Vec::new());
        if let Some(sweep) = raw.sweep {
            if sweep.policies.is_empty() {
                return Err(invalid("[sweep] policies: name at least one".into()));
            }
            let entries: Vec<PathBuf> = sweep.workloads.iter().map(|e| base.join(e)).collect();
            workloads =
                workload_files(&entries).map_err(|e| invalid(format!("[sweep] workloads: {e}")))?;
            policies = sweep.policies;
            no_penalty_proof = sweep.no_penalty_proof;
        }
        let explore = match raw.explore {
            Some(e) if e.seeds == 0 || e.steps == 0 => {
                return Err(invalid(
                    "[explore] seeds and steps must be at least 1".into(),
                ));
            }
            Some(e) if e.seeds > MAX_SEEDS || e.steps > MAX_STEPS => {
                return Err(invalid(format!(
                    "[explore] at most {MAX_SEEDS} seeds of at most {MAX_STEPS} steps (each seed \
                     is a test per backend): {} seeds of {} steps asked",
                    e.seeds, e.steps
                )));
            }
            Some(e) => Some(ExploreRange {
                first_seed: e.first_seed,
                seeds: e.seeds,
                steps: e.steps,
                policy: e.policy,
            }),
            None => None,
        };
        Ok(Self {
            path: path.to_path_buf(),
            seed: raw.seed,
            workloads,
            policies,
            no_penalty_proof,
            explore,
        })
    }

    /// Every test, in a stable order, and every entry that yields none.
    pub fn tests(&self) -> (Vec<ShardTest>, Vec<Broken>) {
        let (mut tests, mut broken) = (Vec::new(), Vec::new());
        for path in &self.workloads {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            let loaded = Workload::load(path)
                .map_err(|e| e.to_string())
                .and_then(|w| {
                    // Every point's run pins the interleaving its list was discovered with.
                    PointList::load(path)
                        .map(|l| (w.pinned(l.order.clone()), l))
                        .map_err(|e| e.to_string())
                });
            let (workload, list) = match loaded {
                Ok(found) => found,
                Err(why) => {
                    broken.push(Broken {
                        name: format!("sweep/{stem}/unlisted"),
                        why,
                    });
                    continue;
                }
            };
            if list.seed != self.seed {
                broken.push(Broken {
                    name: format!("sweep/{stem}/unlisted"),
                    why: format!(
                        "{}: its points were discovered with seed {}, {} says seed {}; rewrite \
                         them with `dlp-harness points --write {}` (it takes the seed from {})",
                        crate::sweep::points_path(path).display(),
                        list.seed,
                        self.path.display(),
                        self.seed,
                        path.display(),
                        self.path.display()
                    ),
                });
                continue;
            }
            let rules = PointRules {
                penalty_proof: !self.no_penalty_proof.iter().any(|n| n == workload.name()),
            };
            let workload = Arc::new(workload);
            for backend in BACKENDS {
                for policy in &self.policies {
                    for point in list.of(backend) {
                        tests.push(ShardTest::Sweep {
                            workload: workload.clone(),
                            backend,
                            policy: *policy,
                            point: point.clone(),
                            rules,
                        });
                    }
                }
            }
        }
        if let Some(range) = self.explore {
            for seed in range.first_seed..range.first_seed.saturating_add(range.seeds) {
                for backend in BACKENDS {
                    tests.push(ShardTest::Explore {
                        spec: ScheduleSpec::of_seed(seed, range.steps, range.policy),
                        backend,
                    });
                }
            }
        }
        (tests, broken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_file_is_refused_naming_it_and_what_is_wrong() {
        let path = Path::new("/nowhere/shards.toml");
        let err = ShardsFile::parse(path, "[sweep]\nworkloads = []\npolicies = []\n")
            .expect_err("no policy");
        assert_eq!(
            err.to_string(),
            "/nowhere/shards.toml: [sweep] policies: name at least one"
        );
        let err = ShardsFile::parse(path, "sed = 1\n").expect_err("unknown key");
        assert!(err.to_string().contains("unknown field `sed`"), "{err}");
        let err = ShardsFile::parse(
            path,
            "[explore]\nfirst_seed = 1\nseeds = 0\nsteps = 4\npolicy = \"strict\"\n",
        )
        .expect_err("no seeds");
        assert!(err.to_string().contains("at least 1"), "{err}");
        let err = ShardsFile::parse(
            path,
            "[explore]\nfirst_seed = 1\nseeds = 1000000000000\nsteps = 4\npolicy = \"strict\"\n",
        )
        .expect_err("too many seeds");
        assert!(err.to_string().contains("at most 10000 seeds"), "{err}");
    }

    #[test]
    fn explorer_seeds_are_tests_on_both_backends_with_readable_names() {
        let file = ShardsFile::parse(
            Path::new("shards.toml"),
            "[explore]\nfirst_seed = 9\nseeds = 2\nsteps = 4\npolicy = \"strict\"\n",
        )
        .expect("valid");
        let (tests, broken) = file.tests();
        assert!(broken.is_empty());
        let names: Vec<String> = tests.iter().map(ShardTest::name).collect();
        assert_eq!(
            names,
            [
                "explore/seed-009@rocksdb/strict",
                "explore/seed-009@sqlite/strict",
                "explore/seed-010@rocksdb/strict",
                "explore/seed-010@sqlite/strict"
            ]
        );
    }
}
