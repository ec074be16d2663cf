//! Damage to a backup on disk, as a file nemesis does it: one byte flipped, a file cut short,
//! deleted or zeroed over a range, or files taken from another backup of the same node (a
//! partial rollback). The harness uses it for the `damage_backup` step and the damage sweep, so
//! that a restore is tried on the backups a real disk, a bad copy or an operator produce, not
//! only on perfect ones.
//!
//! Everything random (which store file, which offset, which new byte value) is drawn from a
//! [`DamageRng`] seeded by the run's seed and the step, so a run is reproduced by its seed. What
//! was done is described in one line ([`Applied`]) for the timeline.
//!
//! A damaged file is always written as a new file renamed over the old one, never changed in
//! place: a RocksDB checkpoint hard-links the live store's SST files, so an in-place change of
//! the backup's copy would change the running node's store too (the same inode). The damage is
//! the backup's alone, as if the backup had been copied elsewhere and damaged there.
//!
//! Near a leaf: plain files under a directory (and the seeded generator), no node, no cluster.

use std::path::{Path, PathBuf};

use dlp_node_api::{Backend, ROCKSDB_BACKUP_DIR_NAME, SQLITE_FILE_NAME};

use crate::seeded::SplitMix64;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a backup is damaged.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// One byte changed (to a different value) at `offset` (default: drawn from the seed).
    Flip,
    /// The file cut to `offset` bytes (default: half its size).
    Truncate,
    /// The file removed.
    Delete,
    /// `len` bytes (default 64, to the end at most) set to zero from `offset` (default: drawn).
    Zero,
    /// The file(s) replaced by those of backup `with` of the same node.
    Swap,
}

impl How {
    /// Every way, in the order the damage sweep tries them.
    pub const ALL: [How; 5] = [How::Flip, How::Truncate, How::Delete, How::Zero, How::Swap];

    pub fn name(self) -> &'static str {
        match self {
            How::Flip => "flip",
            How::Truncate => "truncate",
            How::Delete => "delete",
            How::Zero => "zero",
            How::Swap => "swap",
        }
    }

    /// Whether an `offset` means something for this way.
    pub fn takes_offset(self) -> bool {
        matches!(self, How::Flip | How::Truncate | How::Zero)
    }
}

impl std::fmt::Display for How {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Bytes `zero` clears when the step gives no `len`.
pub const DEFAULT_ZERO_LEN: u64 = 64;

/// What part of a backup is damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One file, relative to the backup directory (`"key"`, `"db/CURRENT"`).
    File(String),
    /// The store files of the backend: for `flip`, `truncate` and `zero` one of them drawn from
    /// the seed (SQLite has one), for `delete` and `swap` all of them.
    Store,
}

/// One damage to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub target: Target,
    pub how: How,
    pub offset: Option<u64>,
    pub len: Option<u64>,
}

/// What was done, for the timeline: `flipped byte 1234 of db/000009.sst (0x3a -> 0xc5)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub description: String,
    /// The files changed, relative to the backup directory.
    pub files: Vec<String>,
    /// The offset and length used (drawn or given), where the way has them: a step with these
    /// written out does exactly the same damage under any seed.
    pub offset: Option<u64>,
    pub len: Option<u64>,
    /// Whether any byte of the backup changed (zeroing zeros, or swapping in an identical
    /// file, changes nothing).
    pub changed: bool,
}

/// Why damage could not be applied. Nothing in the backup was changed, unless the error says
/// an I/O step failed midway.
#[derive(Debug, thiserror::Error)]
pub enum DamageError {
    #[error("{} has no file {file:?} (it holds: {held})", dir.display())]
    NoSuchFile {
        dir: PathBuf,
        file: String,
        held: String,
    },
    #[error("{} holds no {backend} store", dir.display())]
    NoStore { dir: PathBuf, backend: Backend },
    #[error("offset {offset} is past the end of {file} ({size} bytes)")]
    OffsetPastEnd {
        file: String,
        offset: u64,
        size: u64,
    },
    #[error("{file} is empty: there is no byte to {how}")]
    EmptyFile { file: String, how: How },
    #[error("swap needs another backup to take the files from")]
    NoSwapSource,
    #[error("{file} is not in the backup to swap from ({})", with.display())]
    NotInSwapSource { file: String, with: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DamageError + '_ {
    move |source| DamageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The generator of one damage ([`SplitMix64`]): the same seed draws the same damage on every
/// machine.
#[derive(Debug, Clone)]
pub struct DamageRng(SplitMix64);

impl DamageRng {
    /// A generator for one damage: the run's seed mixed with a label naming the step (or the
    /// sweep's case), so two steps of one run draw differently.
    pub fn new(seed: u64, label: &str) -> Self {
        // FNV-1a of the label, folded into the seed.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in label.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self(SplitMix64::from_state(seed ^ h.rotate_left(17)))
    }

    /// A value below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }
}

/// Every file of a backup directory, relative and sorted (`db/000009.sst`, `key`, ...).
pub fn list_files(dir: &Path) -> Result<Vec<String>, DamageError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).map_err(io(&at))? {
            let entry = entry.map_err(io(&at))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io(&path))?;
            if kind.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The store files of `backend` among a backup's files: every file under `db/` (a RocksDB
/// checkpoint) or `data.sqlite` (and its `-wal`/`-journal` companions, if any).
pub fn store_files(files: &[String], backend: Backend) -> Vec<String> {
    files
        .iter()
        .filter(|f| match backend {
            Backend::Rocksdb => f.starts_with(&format!("{ROCKSDB_BACKUP_DIR_NAME}/")),
            Backend::Sqlite => f.starts_with(SQLITE_FILE_NAME),
        })
        .cloned()
        .collect()
}

/// Why a target names nothing among a backup's files.
enum Unresolved {
    NoSuchFile(String),
    NoStore,
}

/// The files of `files` that `target` names: the one file, or every store file.
fn resolve(files: &[String], target: &Target, backend: Backend) -> Result<Vec<String>, Unresolved> {
    match target {
        Target::File(file) if files.contains(file) => Ok(vec![file.clone()]),
        Target::File(file) => Err(Unresolved::NoSuchFile(file.clone())),
        Target::Store => {
            let store = store_files(files, backend);
            if store.is_empty() {
                Err(Unresolved::NoStore)
            } else {
                Ok(store)
            }
        }
    }
}

/// Apply `damage` to the backup at `dir` of a `backend` node; `with` is the backup a `swap`
/// takes files from. Draws from `rng` only what the step left open.
pub fn apply(
    dir: &Path,
    backend: Backend,
    damage: &Damage,
    with: Option<&Path>,
    rng: &mut DamageRng,
) -> Result<Applied, DamageError> {
    let files = list_files(dir)?;
    let resolved = resolve(&files, &damage.target, backend).map_err(|e| match e {
        Unresolved::NoSuchFile(file) => DamageError::NoSuchFile {
            dir: dir.to_path_buf(),
            file,
            held: files.join(", "),
        },
        Unresolved::NoStore => DamageError::NoStore {
            dir: dir.to_path_buf(),
            backend,
        },
    })?;
    let targets: Vec<String> = match &damage.target {
        Target::File(_) => resolved,
        Target::Store => {
            let store = resolved;
            match damage.how {
                How::Delete | How::Swap => store,
                How::Flip | How::Truncate | How::Zero => {
                    // Only a file with bytes in it can be changed this way (an empty WAL
                    // would make the damage a no-op).
                    let sized: Vec<String> = store
                        .into_iter()
                        .filter(|f| std::fs::metadata(dir.join(f)).is_ok_and(|m| m.len() > 0))
                        .collect();
                    if sized.is_empty() {
                        return Err(DamageError::EmptyFile {
                            file: "every store file".into(),
                            how: damage.how,
                        });
                    }
                    let pick = rng.below(sized.len() as u64) as usize;
                    vec![sized[pick].clone()]
                }
            }
        }
    };
    match damage.how {
        How::Flip => flip(dir, &targets[0], damage.offset, rng),
        How::Truncate => truncate(dir, &targets[0], damage.offset),
        How::Zero => zero(dir, &targets[0], damage.offset, damage.len, rng),
        How::Delete => {
            for file in &targets {
                let path = dir.join(file);
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
            Ok(Applied {
                description: format!("deleted {}", describe_files(&targets)),
                files: targets,
                offset: None,
                len: None,
                changed: true,
            })
        }
        How::Swap => {
            let with = with.ok_or(DamageError::NoSwapSource)?;
            swap(dir, with, &targets, &damage.target, backend)
        }
    }
}

/// Replace `path` with `bytes` through a new file renamed over it: a file hard-linked elsewhere
/// (a checkpoint's SST and the live store's) keeps its other name's content.
fn rewrite(path: &Path, bytes: &[u8]) -> Result<(), DamageError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let fresh = path.with_file_name(format!(".{name}.damaged"));
    std::fs::write(&fresh, bytes).map_err(io(&fresh))?;
    std::fs::rename(&fresh, path).map_err(io(path))
}

/// Whether `now` (files of `dir`) are exactly the files and bytes `before` held.
fn same_files(dir: &Path, before: &[(String, Vec<u8>)], now: &[String]) -> bool {
    before.len() == now.len()
        && before.iter().all(|(name, bytes)| {
            now.contains(name) && std::fs::read(dir.join(name)).is_ok_and(|b| b == *bytes)
        })
}

fn describe_files(files: &[String]) -> String {
    match files {
        [one] => one.clone(),
        many => format!("{} files ({})", many.len(), many.join(", ")),
    }
}

/// A file's path and bytes, refused when it has no byte to damage `how`.
fn read_bytes_to(dir: &Path, file: &str, how: How) -> Result<(PathBuf, Vec<u8>), DamageError> {
    let path = dir.join(file);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    if bytes.is_empty() {
        return Err(DamageError::EmptyFile {
            file: file.to_string(),
            how,
        });
    }
    Ok((path, bytes))
}

/// The offset to use: the step's (checked against the size) or one drawn below `size`.
fn offset_in(
    file: &str,
    size: u64,
    offset: Option<u64>,
    rng: &mut DamageRng,
) -> Result<u64, DamageError> {
    match offset {
        Some(offset) if offset >= size => Err(DamageError::OffsetPastEnd {
            file: file.to_string(),
            offset,
            size,
        }),
        Some(offset) => Ok(offset),
        None => Ok(rng.below(size)),
    }
}

fn flip(
    dir: &Path,
    file: &str,
    offset: Option<u64>,
    rng: &mut DamageRng,
) -> Result<Applied, DamageError> {
    let (path, mut bytes) = read_bytes_to(dir, file, How::Flip)?;
    let at = offset_in(file, bytes.len() as u64, offset, rng)?;
    let old = bytes[at as usize];
    // XOR with a nonzero mask: the byte always changes.
    let new = old ^ (1 + rng.below(255) as u8);
    bytes[at as usize] = new;
    rewrite(&path, &bytes)?;
    Ok(Applied {
        description: format!("flipped byte {at} of {file} ({old:#04x} -> {new:#04x})"),
        files: vec![file.to_string()],
        offset: Some(at),
        len: None,
        changed: true,
    })
}

fn truncate(dir: &Path, file: &str, offset: Option<u64>) -> Result<Applied, DamageError> {
    let path = dir.join(file);
    let size = std::fs::metadata(&path).map_err(io(&path))?.len();
    let to = match offset {
        Some(offset) if offset > size => {
            return Err(DamageError::OffsetPastEnd {
                file: file.to_string(),
                offset,
                size,
            });
        }
        Some(offset) => offset,
        None => size / 2,
    };
    if size == 0 {
        return Err(DamageError::EmptyFile {
            file: file.to_string(),
            how: How::Truncate,
        });
    }
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    rewrite(&path, &bytes[..to as usize])?;
    Ok(Applied {
        description: format!("truncated {file} from {size} to {to} bytes"),
        files: vec![file.to_string()],
        offset: Some(to),
        len: None,
        changed: to < size,
    })
}

fn zero(
    dir: &Path,
    file: &str,
    offset: Option<u64>,
    len: Option<u64>,
    rng: &mut DamageRng,
) -> Result<Applied, DamageError> {
    let (path, mut bytes) = read_bytes_to(dir, file, How::Zero)?;
    let size = bytes.len() as u64;
    let from = offset_in(file, size, offset, rng)?;
    let end = from
        .saturating_add(len.unwrap_or(DEFAULT_ZERO_LEN))
        .min(size);
    let range = from as usize..end as usize;
    let changed = bytes[range.clone()].iter().filter(|b| **b != 0).count();
    bytes[range].fill(0);
    rewrite(&path, &bytes)?;
    Ok(Applied {
        description: format!(
            "zeroed bytes {from}..{end} of {file} ({changed} of them were not zero)"
        ),
        files: vec![file.to_string()],
        offset: Some(from),
        len: Some(end - from),
        changed: changed > 0,
    })
}

/// Replace `targets` (or, for the store, the whole store) by the files of backup `with`.
fn swap(
    dir: &Path,
    with: &Path,
    targets: &[String],
    target: &Target,
    backend: Backend,
) -> Result<Applied, DamageError> {
    let theirs = list_files(with)?;
    let take = resolve(&theirs, target, backend).map_err(|e| match e {
        Unresolved::NoSuchFile(file) => DamageError::NotInSwapSource {
            file,
            with: with.to_path_buf(),
        },
        Unresolved::NoStore => DamageError::NoStore {
            dir: with.to_path_buf(),
            backend,
        },
    })?;
    let before: Vec<(String, Vec<u8>)> = targets
        .iter()
        .map(|f| (f.clone(), std::fs::read(dir.join(f)).unwrap_or_default()))
        .collect();
    // The store is replaced whole: none of this backup's store files stays beside the other's.
    for file in targets {
        let path = dir.join(file);
        std::fs::remove_file(&path).map_err(io(&path))?;
    }
    for file in &take {
        let (from, to) = (with.join(file), dir.join(file));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::copy(&from, &to).map_err(io(&from))?;
    }
    let whose = with
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Applied {
        description: format!(
            "replaced {} by {} of backup {whose}",
            describe_files(targets),
            describe_files(&take)
        ),
        changed: !same_files(dir, &before, &take),
        files: take,
        offset: None,
        len: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("test step");
        for (name, bytes) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("test step")).expect("test step");
            std::fs::write(path, bytes).expect("test step");
        }
        dir
    }

    fn damage(target: Target, how: How) -> Damage {
        Damage {
            target,
            how,
            offset: None,
            len: None,
        }
    }

    #[test]
    fn a_flip_changes_exactly_one_byte_and_the_seed_reproduces_it() {
        let run = |seed| {
            let dir = backup(&[("key", &[7u8; 32])]);
            let applied = apply(
                dir.path(),
                Backend::Sqlite,
                &damage(Target::File("key".into()), How::Flip),
                None,
                &mut DamageRng::new(seed, "step 3"),
            )
            .expect("test step");
            let after = std::fs::read(dir.path().join("key")).expect("test step");
            (applied, after)
        };
        let (applied, after) = run(42);
        assert_eq!(after.iter().filter(|b| **b != 7).count(), 1, "{applied:?}");
        assert_eq!(run(42), (applied.clone(), after.clone()));
        assert_ne!(run(43).1, after, "another seed draws another place");
    }

    #[test]
    fn damage_never_reaches_a_hard_linked_copy_of_the_file() {
        let dir = backup(&[("db/000009.sst", &[5u8; 64])]);
        let live = tempfile::tempdir().expect("test step");
        let live_sst = live.path().join("000009.sst");
        std::fs::hard_link(dir.path().join("db/000009.sst"), &live_sst).expect("test step");
        for how in [How::Flip, How::Zero, How::Truncate] {
            apply(
                dir.path(),
                Backend::Rocksdb,
                &damage(Target::Store, how),
                None,
                &mut DamageRng::new(3, how.name()),
            )
            .expect("test step");
        }
        assert_eq!(std::fs::read(&live_sst).expect("test step"), [5u8; 64]);
        assert_ne!(
            std::fs::read(dir.path().join("db/000009.sst")).expect("test step"),
            [5u8; 64]
        );
    }

    #[test]
    fn truncate_defaults_to_half_and_refuses_an_offset_past_the_end() {
        let dir = backup(&[("data.sqlite", &[1u8; 100])]);
        let mut rng = DamageRng::new(1, "t");
        apply(
            dir.path(),
            Backend::Sqlite,
            &damage(Target::Store, How::Truncate),
            None,
            &mut rng,
        )
        .expect("test step");
        let size = std::fs::metadata(dir.path().join("data.sqlite"))
            .expect("test step")
            .len();
        assert_eq!(size, 50);
        let past = Damage {
            offset: Some(51),
            ..damage(Target::Store, How::Truncate)
        };
        let err = apply(dir.path(), Backend::Sqlite, &past, None, &mut rng).expect_err("must fail");
        assert!(matches!(err, DamageError::OffsetPastEnd { .. }), "{err}");
    }

    #[test]
    fn zero_clears_the_range_clipped_to_the_end() {
        let dir = backup(&[("sk", &[9u8; 10])]);
        let zero = Damage {
            offset: Some(6),
            len: Some(100),
            ..damage(Target::File("sk".into()), How::Zero)
        };
        let applied = apply(
            dir.path(),
            Backend::Rocksdb,
            &zero,
            None,
            &mut DamageRng::new(0, ""),
        )
        .expect("test step");
        assert_eq!(
            std::fs::read(dir.path().join("sk")).expect("test step"),
            [9, 9, 9, 9, 9, 9, 0, 0, 0, 0]
        );
        assert!(applied.description.contains("6..10"), "{applied:?}");
    }

    #[test]
    fn deleting_the_store_removes_every_store_file_and_nothing_else() {
        let dir = backup(&[
            ("db/CURRENT", b"MANIFEST-1"),
            ("db/000001.sst", b"x"),
            ("key", b"k"),
            ("manifest.json", b"{}"),
        ]);
        apply(
            dir.path(),
            Backend::Rocksdb,
            &damage(Target::Store, How::Delete),
            None,
            &mut DamageRng::new(0, ""),
        )
        .expect("test step");
        assert_eq!(
            list_files(dir.path()).expect("test step"),
            ["key".to_string(), "manifest.json".to_string()]
        );
    }

    #[test]
    fn swapping_the_store_takes_the_other_backups_store_whole() {
        let ours = backup(&[
            ("db/CURRENT", b"MANIFEST-2"),
            ("db/000002.sst", b"new"),
            ("manifest.json", b"ours"),
        ]);
        let theirs = backup(&[
            ("db/CURRENT", b"MANIFEST-1"),
            ("db/000001.sst", b"old"),
            ("manifest.json", b"theirs"),
        ]);
        let applied = apply(
            ours.path(),
            Backend::Rocksdb,
            &damage(Target::Store, How::Swap),
            Some(theirs.path()),
            &mut DamageRng::new(0, ""),
        )
        .expect("test step");
        assert_eq!(
            list_files(ours.path()).expect("test step"),
            ["db/000001.sst", "db/CURRENT", "manifest.json"]
        );
        assert_eq!(
            std::fs::read(ours.path().join("manifest.json")).expect("test step"),
            b"ours"
        );
        assert_eq!(applied.files, ["db/000001.sst", "db/CURRENT"]);
    }

    #[test]
    fn a_missing_file_is_named_with_what_the_backup_holds() {
        let dir = backup(&[("key", b"k")]);
        let err = apply(
            dir.path(),
            Backend::Sqlite,
            &damage(Target::File("sk".into()), How::Delete),
            None,
            &mut DamageRng::new(0, ""),
        )
        .expect_err("must fail");
        assert_eq!(
            err.to_string(),
            format!(
                "{} has no file \"sk\" (it holds: key)",
                dir.path().display()
            )
        );
    }
}
