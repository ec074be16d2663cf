//! A workload's committed point list: its backup points, discovered once per backend and
//! written beside the workload (`two_node_direct.toml` -> `two_node_direct.points.json`).
//!
//! Why: every sweep point is a test of its own (`harness/tests/shards.rs`), so that nextest can
//! spread them over machines; listing those tests must be fast and the same everywhere, so it
//! reads this file instead of running the workload. What keeps the file true is a test that
//! discovers the points again and fails naming the command that rewrites the file
//! (`dlp-harness points --write`) when they differ.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dlp_node_api::Backend;
use serde::{Deserialize, Serialize};

use super::{BackupPoint, Interleaving, SweepError, Workload, discover};
use crate::capability::DriverKind;

/// Ends the workload's file name in place of `.toml`.
pub const POINTS_SUFFIX: &str = ".points.json";

/// What the committed file says of how it was made.
const ABOUT: &str = "The workload's backup points per backend, discovered by running it once \
                     (dlp-harness points --write <workload>). Each is a test of \
                     harness/tests/shards.rs; a test fails when the workload finds other points.";

/// The backup points of one workload, per backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointList {
    pub about: String,
    /// The seed the workload ran with.
    pub seed: u64,
    /// Per backend (`rocksdb`, `sqlite`), in the order the sweep numbers them.
    pub points: BTreeMap<String, Vec<BackupPoint>>,
    /// The interleaving the discovery recorded, which every point's run pins (per node, its
    /// racing inputs in order; see `interleaving.rs`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub order: Interleaving,
}

/// A point list that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PointListError {
    #[error(
        "{}: no committed point list for this workload; write it with `dlp-harness points --write {}`",
        path.display(), workload.display()
    )]
    Missing { path: PathBuf, workload: PathBuf },
    #[error("{}: {detail}", path.display())]
    Unreadable { path: PathBuf, detail: String },
    #[error(
        "{}: the committed points are not the workload's ({detail}); if the workload changed on \
         purpose, rewrite them with `dlp-harness points --write {}` and review the diff",
        path.display(), workload.display()
    )]
    Stale {
        path: PathBuf,
        workload: PathBuf,
        detail: String,
    },
    #[error(transparent)]
    Discover(Box<SweepError>),
}

/// Where a workload's point list lives.
pub fn points_path(workload: &Path) -> PathBuf {
    let name = workload
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let stem = name.strip_suffix(".toml").unwrap_or(&name);
    workload.with_file_name(format!("{stem}{POINTS_SUFFIX}"))
}

impl PointList {
    /// The committed list of the workload at `path`.
    pub fn load(workload: &Path) -> Result<Self, PointListError> {
        let path = points_path(workload);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(PointListError::Missing {
                    path,
                    workload: workload.to_path_buf(),
                });
            }
            Err(e) => {
                return Err(PointListError::Unreadable {
                    path,
                    detail: e.to_string(),
                });
            }
        };
        serde_json::from_str(&text).map_err(|e| PointListError::Unreadable {
            path,
            detail: format!("not a point list: {e}"),
        })
    }

    /// Run the workload once per backend (in process) and list its points: the first run free,
    /// recording the interleaving (unless `pinned` gives one: then every run pins that), the
    /// others pinning it.
    pub async fn discover(
        workload: &Workload,
        backends: &[Backend],
        seed: u64,
        runs_root: &Path,
        pinned: Option<&Interleaving>,
    ) -> Result<Self, PointListError> {
        let mut points = BTreeMap::new();
        let mut order = pinned.cloned();
        for backend in backends {
            let dir = runs_root.join(format!(
                "points-{}-{backend}-{}-{}",
                workload.name(),
                std::process::id(),
                super::SWEEP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            let found = discover(
                workload,
                *backend,
                DriverKind::InProcess,
                seed,
                &dir,
                order.as_ref(),
            )
            .await
            .map_err(|failure| {
                PointListError::Discover(Box::new(SweepError::Discover {
                    path: workload.scenario.path.clone(),
                    backend: *backend,
                    failure,
                }))
            })?;
            let _ = std::fs::remove_dir_all(&dir);
            points.insert(backend.to_string(), found.points);
            order.get_or_insert(found.order);
        }
        Ok(Self {
            about: ABOUT.to_string(),
            seed,
            points,
            order: order.unwrap_or_default(),
        })
    }

    /// The file's text (pretty JSON, a newline at the end).
    pub fn to_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The points of one backend (none when the list has no such backend).
    pub fn of(&self, backend: Backend) -> &[BackupPoint] {
        self.points
            .get(&backend.to_string())
            .map_or(&[], Vec::as_slice)
    }

    /// How `found` (discovered now) differs from this committed list, if it does. Points are
    /// compared as the sweep compares the backends' ([`BackupPoint::key`]: the step and the
    /// numbers of the point's own channel, as a set): where the node has several channels,
    /// how their steps interleave varies from run to run, and with it the points' order and
    /// the other channels' numbers at each; a point run waits for the committed interleaving
    /// (and judges the one it got after a few tries), as every sweep does.
    pub fn differences(&self, found: &PointList) -> Option<String> {
        if self.seed != found.seed {
            return Some(format!(
                "committed with seed {}, discovered with {}",
                self.seed, found.seed
            ));
        }
        let mut out = Vec::new();
        let backends: BTreeSet<&String> = self.points.keys().chain(found.points.keys()).collect();
        for backend in backends {
            let keys = |list: &PointList| -> BTreeSet<(String, Option<(u64, u64)>)> {
                list.points
                    .get(backend)
                    .map(|points| points.iter().map(BackupPoint::key).collect())
                    .unwrap_or_default()
            };
            let (old, new) = (keys(self), keys(found));
            if old == new {
                continue;
            }
            let show = |set: Vec<&(String, Option<(u64, u64)>)>| {
                set.iter()
                    .map(|(label, numbers)| format!("{label} {numbers:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push(format!(
                "{backend}: {} committed, {} found; only committed: [{}]; only found: [{}]",
                old.len(),
                new.len(),
                show(old.difference(&new).collect()),
                show(new.difference(&old).collect())
            ));
        }
        (!out.is_empty()).then(|| out.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(index: usize, nth: u64) -> BackupPoint {
        BackupPoint {
            index,
            step: "sent:CommitmentSigned".into(),
            channel: "ab".into(),
            nth,
            numbers: BTreeMap::from([("ab".to_string(), (nth, nth))]),
        }
    }

    #[test]
    fn the_list_sits_beside_its_workload() {
        assert_eq!(
            points_path(Path::new("scenarios/sweeps/two_node_direct.toml")),
            Path::new("scenarios/sweeps/two_node_direct.points.json")
        );
    }

    #[test]
    fn a_list_reads_back_what_it_wrote_and_names_what_differs() {
        let list = PointList {
            about: ABOUT.into(),
            seed: 1,
            points: BTreeMap::from([("rocksdb".to_string(), vec![point(1, 1), point(2, 2)])]),
            order: Interleaving::new(),
        };
        let back: PointList = serde_json::from_str(&list.to_text()).expect("reads back");
        assert_eq!(back, list);
        assert_eq!(list.differences(&back), None);
        // Another order (channels interleaved otherwise) is the same list.
        let mut swapped = list.clone();
        swapped
            .points
            .get_mut("rocksdb")
            .expect("rocksdb")
            .reverse();
        assert_eq!(list.differences(&swapped), None);
        let mut other = list.clone();
        other.points.get_mut("rocksdb").expect("rocksdb")[1] = point(2, 3);
        let diff = list.differences(&other).expect("differs");
        assert_eq!(
            diff,
            "rocksdb: 2 committed, 2 found; only committed: [sent:CommitmentSigned#2 on ab \
             Some((2, 2))]; only found: [sent:CommitmentSigned#3 on ab Some((3, 3))]"
        );
        other.seed = 2;
        assert!(
            list.differences(&other)
                .expect("differs")
                .contains("seed 1")
        );
    }
}
