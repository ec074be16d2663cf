//! Harness errors. Every variant says what the harness was doing and what it saw.

use std::path::PathBuf;

/// Why a harness operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The harness could not set something up (spawn a process, bind, create a directory).
    #[error("setup: {0}")]
    Setup(String),
    /// A node answered an RPC with an error or not at all.
    #[error("node {node}: {detail}")]
    Node { node: String, detail: String },
    /// The ledger refused or failed.
    #[error("chain: {0}")]
    Chain(String),
    /// A wait ran out; `seen` lists what was observed meanwhile.
    #[error("timed out after {seconds}s waiting for {what}\n{seen}")]
    Timeout {
        what: String,
        seconds: u64,
        seen: String,
    },
    /// A node is paused (frozen where it stands): it answers nothing until it is resumed, so
    /// whatever needed it fails at once instead of waiting out a deadline.
    #[error("{node} is paused: {what} cannot go on until it is resumed")]
    Paused { node: String, what: String },
    /// An expectation of the scenario did not hold.
    #[error("expectation failed: {0}")]
    Expectation(String),
    /// An invariant was violated.
    #[error("invariant violated: {0}")]
    Invariant(String),
    /// A scenario file is invalid.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A path given as a scenario file cannot be one (not a regular file, too large); it was not
    /// opened for reading.
    #[error("{path}: {reason}")]
    NotAScenario { path: PathBuf, reason: String },
    /// The paths given hold no scenario file: an empty selection is a mistake, not a pass.
    #[error("no scenario files (*.toml) in {}", display_paths(.paths))]
    NoScenarios { paths: Vec<PathBuf> },
    #[error("I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HarnessError {
    pub(crate) fn node(node: &str, detail: impl std::fmt::Display) -> Self {
        HarnessError::Node {
            node: node.to_string(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HarnessError::Io {
            path: path.into(),
            source,
        }
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
