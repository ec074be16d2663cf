//! The scenario format: declarative files that say what a network does and what must then be
//! true, read and checked without any network. It knows no cluster and no driver: the verbs
//! themselves (their fields, facts, checks and how they run) are `steps/`, one family per file,
//! and this layer is generic over their type ([`StepFormat`]).
//!
//! A scenario is a TOML file (see `scenarios/README.md`): nodes and their settings, channels
//! opened at the start, then `steps`, each a table with exactly one verb. The whole file is
//! checked before anything starts, so a typo costs an error with its file, line and column, not
//! a half-run network.
//!
//! - `file.rs`: the file's types; `topology.rs`: channels by shape; `settings.rs`: the node
//!   settings a file may set, as the schema describes them.
//! - `source.rs`: reading a file without trusting it (size, kind, UTF-8, nesting).
//! - `validate.rs`: names, bounds and preconditions, with located errors (`locate.rs`), step by
//!   step through each verb's facts and check (`facts.rs`: the traits and what earlier steps
//!   established); `liveness.rs`: which nodes can answer at each step (running, stopped,
//!   paused); `channels.rs`: every channel checked alike; `protocol_step.rs`: step control's
//!   `sent:X` / `received:X`.
//! - `capabilities.rs`: what a scenario needs from its driver, checked before it starts.
//! - `schema.rs`: the format's JSON Schema (`scenarios/scenario.schema.json`), from the types.
//! - `render.rs`: a scenario written back out (what the sweep and the explorer generate).

mod capabilities;
mod channels;
mod facts;
mod file;
mod liveness;
mod locate;
pub mod protocol_step;
mod render;
mod schema;
mod settings;
mod source;
mod topology;
mod validate;

use std::path::{Path, PathBuf};

use dlp_node_api::Backend;

use crate::error::HarnessError;

pub use capabilities::version_needs;
pub use channels::Channels;
pub use facts::{Answerer, Check, Facts, Opening, StepFormat, VerbFacts};
pub use file::{ChannelDecl, NodeDecl, ScenarioFile, SweepDecl};
pub use liveness::{Lifecycle, Liveness, NodeState};
pub use render::render;
pub use schema::json_schema;
pub use source::clip;
pub use topology::{Shape, TopologyDecl, shape_pair_count, shape_pairs};
pub use validate::check_version_name;

/// A parsed, validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario<S> {
    pub path: PathBuf,
    pub name: String,
    pub file: ScenarioFile<S>,
    /// The channels its steps open, found by validation.
    openings: Vec<Opening>,
    /// The text it was parsed from. Every line an error or a report names is looked up here,
    /// never by reading `path` again: the file may have changed since, and a generated
    /// scenario may never have been written at all.
    text: String,
}

impl<S: StepFormat> Scenario<S> {
    /// Read, parse and validate a scenario file. Only a regular file of at most
    /// [`MAX_FILE_BYTES`] is read (a FIFO is refused without being opened), and it must be
    /// UTF-8.
    pub fn load(path: &Path) -> Result<Self, HarnessError> {
        let bytes = source::read(path)?;
        let text = source::decode(path, &bytes)?;
        Self::parse(path, text)
    }

    /// Parse and validate scenario text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, HarnessError> {
        validate::parse(path, text)
    }

    /// A scenario the harness generated (a sweep point, an explorer schedule, a shrink
    /// candidate): rendered to TOML (`comment` as `#` lines on top) and parsed back, so it is
    /// validated like any file and its steps have real lines in [`text`](Self::text). `path`
    /// names it; nothing is written there.
    pub fn generated(
        path: &Path,
        file: &ScenarioFile<S>,
        comment: &str,
    ) -> Result<Self, HarnessError> {
        Self::parse(path, &render(file, comment))
    }

    /// The channels its steps open (`open_channel`), in step order, each with its step.
    pub fn openings(&self) -> &[Opening] {
        &self.openings
    }

    /// The text the scenario was parsed from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Line and column (1-based) of the verb of step `index` (0-based); `None` past the last.
    pub fn step_position(&self, index: usize) -> Option<(usize, usize)> {
        let step = self.file.steps.get(index)?;
        Some(locate::line_col(
            &self.text,
            locate::step_offset(&self.text, step.span().start),
        ))
    }

    /// An invalid-file error located at step `index` (0-based): for rules about a scenario
    /// that only its user knows (a sweep workload may not restart its node under test).
    pub fn invalid_at_step(&self, index: usize, message: String) -> HarnessError {
        let offset = self
            .file
            .steps
            .get(index)
            .map_or(0, |step| locate::step_offset(&self.text, step.span().start));
        self.invalid_at(offset, message)
    }

    /// An invalid-file error at byte `offset` of the text (the start of a field's span).
    pub fn invalid_at(&self, offset: usize, message: String) -> HarnessError {
        locate::invalid(&self.path, &self.text, offset, message)
    }

    /// The name of one combination, the same in the test list, `run`'s table and the failure
    /// report: `<name>@<backend>[<driver>]` (`audit_failure@sqlite[in-process]`), the name as
    /// [`discover`] found it (`fiber/test_restore_marks_channel_stale@rocksdb[process]`) or the
    /// file stem.
    pub fn test_name(&self, backend: Backend, driver: &str) -> String {
        format!("{}@{backend}[{driver}]", self.name)
    }

    /// The backends this scenario runs on.
    pub fn backends(&self) -> Vec<Backend> {
        match &self.file.backends {
            None => vec![Backend::Rocksdb, Backend::Sqlite],
            Some(list) => list
                .iter()
                .filter_map(|b| b.get_ref().parse().ok())
                .collect(),
        }
    }
}

/// A scenario file [`discover`] found, with the name its tests, tables and reports use: the
/// path relative to the directory it was found in, without `.toml` (`audit_failure`,
/// `fiber/test_restore_marks_channel_stale`), or the file stem of a file given itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub name: String,
}

impl Found {
    /// Read, parse and validate it ([`Scenario::load`]), named as found.
    pub fn load<S: StepFormat>(&self) -> Result<Scenario<S>, HarnessError> {
        let mut scenario = Scenario::load(&self.path)?;
        scenario.name.clone_from(&self.name);
        Ok(scenario)
    }
}

/// Every `*.toml` under `paths`: files as given, directories searched recursively (in name
/// order, a directory's own files first; entries starting with `.` and symbolic links to
/// directories are not followed), each file once even if several paths reach it. Entries named
/// `*.toml` that are not regular files are listed too, for [`Scenario::load`] to refuse by name;
/// finding nothing at all is an error, not an empty success.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<Found>, HarnessError> {
    let mut out: Vec<Found> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for path in paths {
        let mut found = Vec::new();
        if path.is_dir() {
            search(path, "", 0, &mut found)?;
        } else {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            found.push(Found {
                path: path.clone(),
                name,
            });
        }
        for f in found {
            let key = std::fs::canonicalize(&f.path).unwrap_or_else(|_| f.path.clone());
            if seen.insert(key) {
                out.push(f);
            }
        }
    }
    if out.is_empty() {
        return Err(HarnessError::NoScenarios {
            paths: paths.to_vec(),
        });
    }
    Ok(out)
}

/// Deepest directory [`discover`] descends into below a directory it was given.
const MAX_DEPTH: usize = 8;

/// The `*.toml` files of `dir` (named with `prefix`), then its subdirectories' in name order.
fn search(
    dir: &Path,
    prefix: &str,
    depth: usize,
    out: &mut Vec<Found>,
) -> Result<(), HarnessError> {
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
        .map_err(|e| HarnessError::io(dir, e))?
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    let mut subdirs = Vec::new();
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".toml") {
            out.push(Found {
                path,
                name: format!("{prefix}{stem}"),
            });
        } else if entry.file_type().is_ok_and(|t| t.is_dir()) && depth < MAX_DEPTH {
            subdirs.push((path, format!("{prefix}{name}/")));
        }
    }
    for (path, prefix) in subdirs {
        search(&path, &prefix, depth + 1, out)?;
    }
    Ok(())
}
