//! Why a report could not be made (a leaf every file of the layer may use).

use std::path::{Path, PathBuf};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The path is not a run directory (not a directory, or no `run.json` in it).
    #[error("{} is not a run directory: {reason}", path.display())]
    NotARunDir { path: PathBuf, reason: String },
    /// A record file is there but unreadable.
    #[error("{}: {detail}", path.display())]
    Record { path: PathBuf, detail: String },
    #[error("I/O on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ReportError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
