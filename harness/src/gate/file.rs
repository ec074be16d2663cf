//! The gate file: what a release must pass, as TOML. Every path is relative to the file's
//! directory; every table is optional (an empty part runs nothing).
//!
//! ```toml
//! baseline = "gate-baseline.json"   # the committed verdicts to compare with
//! seed = 1                          # everything random in the gate's runs
//!
//! [scenarios]
//! paths = ["scenarios"]             # files or directories of *.toml
//! drivers = ["in-process"]          # each scenario on each, on every backend it names
//!
//! [sweep]
//! workloads = ["scenarios/sweeps/two_node_direct.toml"]
//! policies = ["fiber", "strict"]
//! driver = "in-process"
//!
//! [explore]
//! seeds = 4                         # seeds `seed`, `seed + 1`, ... on both backends
//! steps = 12
//! policy = "strict"
//!
//! [corpus]
//! dir = "fixtures/backups"          # every old backup there, restored by this build
//! driver = "in-process"
//! ```

use std::path::{Path, PathBuf};

use dlp_node_api::AuditPolicy;
use serde::Deserialize;

use crate::capability::DriverKind;

/// Why a gate file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },
}

/// Most explorer seeds or steps a gate may ask for: the gate is a fixed budget, not a search.
pub const MAX_GATE_SEEDS: u64 = 1_000;
pub const MAX_GATE_STEPS: usize = 64;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    baseline: String,
    #[serde(default = "one")]
    seed: u64,
    #[serde(default)]
    scenarios: Option<RawScenarios>,
    #[serde(default)]
    sweep: Option<RawSweep>,
    #[serde(default)]
    explore: Option<RawExplore>,
    #[serde(default)]
    corpus: Option<RawCorpus>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCorpus {
    dir: String,
    #[serde(default = "in_process")]
    driver: String,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenarios {
    paths: Vec<String>,
    drivers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    workloads: Vec<String>,
    policies: Vec<AuditPolicy>,
    #[serde(default = "in_process")]
    driver: String,
}

fn in_process() -> String {
    DriverKind::InProcess.name().to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExplore {
    seeds: u64,
    steps: usize,
    #[serde(default)]
    policy: Option<AuditPolicy>,
}

/// A checked gate file, paths resolved against its directory.
#[derive(Debug, Clone)]
pub struct GateFile {
    pub path: PathBuf,
    pub baseline: PathBuf,
    pub seed: u64,
    pub scenario_paths: Vec<PathBuf>,
    pub scenario_drivers: Vec<DriverKind>,
    pub sweep_workloads: Vec<PathBuf>,
    pub sweep_policies: Vec<AuditPolicy>,
    pub sweep_driver: DriverKind,
    pub explore_seeds: u64,
    pub explore_steps: usize,
    pub explore_policy: AuditPolicy,
    /// The corpus of old backups to restore with this build (none: no `[corpus]`).
    pub corpus_dir: Option<PathBuf>,
    pub corpus_driver: DriverKind,
}

fn driver(name: &str) -> Option<DriverKind> {
    use clap::ValueEnum;
    DriverKind::value_variants()
        .iter()
        .copied()
        .find(|d| d.name() == name)
}

impl GateFile {
    /// Read and check `path`.
    pub fn load(path: &Path) -> Result<Self, GateError> {
        let text = std::fs::read_to_string(path).map_err(|source| GateError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, GateError> {
        let invalid = |detail: String| GateError::Invalid {
            path: path.to_path_buf(),
            detail,
        };
        let raw: Raw = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &String| dir.join(p);
        let drivers = |names: &[String]| -> Result<Vec<DriverKind>, GateError> {
            names
                .iter()
                .map(|n| {
                    driver(n).ok_or_else(|| {
                        invalid(format!(
                            "unknown driver {n:?} (expected in-process, process or container)"
                        ))
                    })
                })
                .collect()
        };
        let (scenario_paths, scenario_drivers) = match &raw.scenarios {
            Some(s) => {
                if s.drivers.is_empty() {
                    return Err(invalid("[scenarios] drivers is empty".into()));
                }
                (s.paths.iter().map(resolve).collect(), drivers(&s.drivers)?)
            }
            None => (Vec::new(), Vec::new()),
        };
        let (sweep_workloads, sweep_policies, sweep_driver) = match &raw.sweep {
            Some(s) => {
                if s.policies.is_empty() {
                    return Err(invalid("[sweep] policies is empty".into()));
                }
                let driver = drivers(std::slice::from_ref(&s.driver))?[0];
                (
                    s.workloads.iter().map(resolve).collect(),
                    s.policies.clone(),
                    driver,
                )
            }
            None => (Vec::new(), Vec::new(), DriverKind::InProcess),
        };
        let (explore_seeds, explore_steps, explore_policy) = match &raw.explore {
            Some(e) => {
                if e.seeds > MAX_GATE_SEEDS {
                    return Err(invalid(format!(
                        "[explore] seeds {} is more than {MAX_GATE_SEEDS}",
                        e.seeds
                    )));
                }
                if !(1..=MAX_GATE_STEPS).contains(&e.steps) {
                    return Err(invalid(format!(
                        "[explore] steps {} is not 1 to {MAX_GATE_STEPS}",
                        e.steps
                    )));
                }
                (e.seeds, e.steps, e.policy.unwrap_or(AuditPolicy::Strict))
            }
            None => (0, 0, AuditPolicy::Strict),
        };
        let (corpus_dir, corpus_driver) = match &raw.corpus {
            Some(c) => (
                Some(resolve(&c.dir)),
                drivers(std::slice::from_ref(&c.driver))?[0],
            ),
            None => (None, DriverKind::InProcess),
        };
        Ok(Self {
            path: path.to_path_buf(),
            corpus_dir,
            corpus_driver,
            baseline: resolve(&raw.baseline),
            seed: raw.seed,
            scenario_paths,
            scenario_drivers,
            sweep_workloads,
            sweep_policies,
            sweep_driver,
            explore_seeds,
            explore_steps,
            explore_policy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_file_resolves_its_paths_and_refuses_what_it_cannot_run() {
        let gate = GateFile::parse(
            Path::new("/repo/gate.toml"),
            "baseline = \"gate-baseline.json\"\n[scenarios]\npaths = [\"scenarios\"]\n\
             drivers = [\"in-process\", \"process\"]\n[sweep]\nworkloads = [\"w.toml\"]\n\
             policies = [\"fiber\", \"strict\"]\n[explore]\nseeds = 2\nsteps = 8\n",
        )
        .expect("valid");
        assert_eq!(gate.baseline, Path::new("/repo/gate-baseline.json"));
        assert_eq!(gate.scenario_paths, [Path::new("/repo/scenarios")]);
        assert_eq!(
            gate.scenario_drivers,
            [DriverKind::InProcess, DriverKind::Process]
        );
        assert_eq!(gate.sweep_driver, DriverKind::InProcess);
        assert_eq!((gate.explore_seeds, gate.explore_steps), (2, 8));
        for (text, want) in [
            (
                "baseline = \"b\"\n[scenarios]\npaths = []\ndrivers = [\"vm\"]\n",
                "unknown driver \"vm\"",
            ),
            (
                "baseline = \"b\"\n[explore]\nseeds = 5000\nsteps = 8\n",
                "seeds 5000 is more than 1000",
            ),
            ("baseline = \"b\"\nextra = 1\n", "unknown field `extra`"),
            (
                "[scenarios]\npaths = []\ndrivers = []\n",
                "missing field `baseline`",
            ),
        ] {
            let err = GateFile::parse(Path::new("g.toml"), text).expect_err(text);
            assert!(err.to_string().contains(want), "{err}");
        }
    }
}
