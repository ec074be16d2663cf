//! One test's result file: the verdict it reached and why it failed, as JSON, named after the
//! test. The files of every shard, copied into one place (or given as several directories),
//! are what `dlp-harness merge` reads; nothing else about the machine that ran them is needed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sweep::PointResult;

/// Where the tests write their result files (default: `target/shard-results` in the
/// workspace). Point it at an empty directory per run: the merge reads every file it finds.
pub const RESULTS_ENV: &str = "DLP_SHARD_RESULTS";

/// What one test found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The test's name (`ShardTest::name`).
    pub test: String,
    /// The driver it ran on.
    pub driver: String,
    /// The seed it ran with.
    pub seed: u64,
    pub outcome: Outcome,
    /// Why the test failed; empty when it passed.
    pub problems: Vec<String>,
}

/// The verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// A sweep point, judged as `dlp-harness sweep` judges it.
    Sweep {
        workload: String,
        result: Box<PointResult>,
    },
    /// An explorer seed: passed, or the failure's first line.
    Explore {
        seed: u64,
        backend: String,
        policy: String,
        steps: usize,
        nodes: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<String>,
        elapsed_ms: u64,
    },
    /// The test could not run at all (its workload or point list is broken).
    Broken { why: String },
}

impl Record {
    /// The file name for a test: its name with every character but letters, digits, `-`, `_`
    /// and `.` turned into `_`, and a hash of the whole name so two names never share a file.
    pub fn file_name(test: &str) -> String {
        let safe: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // FNV-1a: stable across machines and builds (std's hasher is not).
        let hash = test.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        format!("{safe}-{hash:016x}.json")
    }

    /// Write the record into `dir` (made if missing); the file's path.
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(Self::file_name(&self.test));
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        // Written whole then renamed: a merge never reads half a file.
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, &path)?;
        Ok(path)
    }
}

/// Every record under the given files and directories (directories searched recursively for
/// `*.json`), each with its file; the files that are not records, each with why.
pub fn read_records(inputs: &[PathBuf]) -> (Vec<(PathBuf, Record)>, Vec<String>) {
    let (mut records, mut unreadable) = (Vec::new(), Vec::new());
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            collect_json(input, &mut files, &mut unreadable);
        } else if input.is_file() {
            files.push(input.clone());
        } else {
            unreadable.push(format!("{}: no such file or directory", input.display()));
        }
    }
    files.sort();
    for file in files {
        let read = std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<Record>(&text).map_err(|e| e.to_string()));
        match read {
            Ok(record) => records.push((file, record)),
            Err(e) => unreadable.push(format!("{}: not a test's result file: {e}", file.display())),
        }
    }
    (records, unreadable)
}

fn collect_json(dir: &Path, files: &mut Vec<PathBuf>, unreadable: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            unreadable.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() {
            collect_json(&path, files, unreadable);
        } else if path.extension().is_some_and(|x| x == "json") {
            files.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_distinct() {
        let a =
            Record::file_name("sweep/two_node_direct/03-sent:CommitmentSigned#2-ab@rocksdb/strict");
        assert!(
            a.starts_with("sweep_two_node_direct_03-sent_CommitmentSigned_2-ab_rocksdb_strict-")
        );
        assert!(a.ends_with(".json"));
        // Same characters after the mapping, different names: different files.
        assert_ne!(Record::file_name("a/b"), Record::file_name("a:b"));
    }

    #[test]
    fn a_record_reads_back_and_a_stray_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let record = Record {
            test: "explore/seed-001@rocksdb/strict".into(),
            driver: "in-process".into(),
            seed: 1,
            outcome: Outcome::Explore {
                seed: 1,
                backend: "rocksdb".into(),
                policy: "strict".into(),
                steps: 4,
                nodes: 3,
                failure: None,
                elapsed_ms: 5,
            },
            problems: Vec::new(),
        };
        let path = record.write(&dir.path().join("shard-1")).expect("written");
        std::fs::write(dir.path().join("stray.json"), "{}").expect("stray");
        let (records, unreadable) = read_records(&[dir.path().to_path_buf()]);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].0, path);
        assert_eq!(records[0].1.test, record.test);
        assert_eq!(unreadable.len(), 1, "{unreadable:?}");
        assert!(unreadable[0].contains("stray.json"), "{unreadable:?}");
    }
}
