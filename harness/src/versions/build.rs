//! Build a named version once into the cache: `<cache>/<commit>/bin/{dlp-node,dlp-chain}`.
//!
//! The commit's tree is taken with `git archive` (no worktree to clean up), and built with
//! `cargo build --locked --bins -p dlp-node -p dlp-chain` into one target directory shared by
//! every version (`<cache>/target`: versions of one era share most dependency builds), then the
//! two binaries are copied out and `built.json` written last, so a version is either built or
//! not. RocksDB's C++ is most of a cold build (~10 min on 2 cores) and every version here uses
//! the same `librocksdb-sys`: when this workspace's own build has its archive (`librocksdb.a`),
//! the version links that instead of compiling it again (`ROCKSDB_LIB_DIR`, `ROCKSDB_STATIC`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{Binaries, Version, VersionsError};

/// What building a version did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It was built before (`built.json` and both binaries present).
    Cached,
    /// Built now, in this many seconds; `shared_rocksdb`: linked this workspace's RocksDB.
    Built { seconds: f64, shared_rocksdb: bool },
}

/// Where the build's parts go.
#[derive(Debug, Clone)]
pub struct BuildPlan {
    /// The git repository holding the versions' commits.
    pub repo: PathBuf,
    /// The cache directory ([`super::Catalog::cache_dir`]).
    pub cache: PathBuf,
    /// A `librocksdb.a` to link instead of compiling RocksDB (see the module docs).
    pub rocksdb_archive: Option<PathBuf>,
}

/// What `built.json` records.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Stamp {
    name: String,
    commit: String,
    seconds: f64,
    shared_rocksdb: bool,
}

fn version_dir(cache: &Path, version: &Version) -> PathBuf {
    cache.join(&version.commit)
}

/// Where `version`'s binaries are once built.
pub fn binaries_in(cache: &Path, version: &Version) -> Binaries {
    let bin = version_dir(cache, version).join("bin");
    Binaries {
        node: bin.join("dlp-node"),
        chain: bin.join("dlp-chain"),
    }
}

/// Whether `version` is built in `cache`.
pub fn is_built(cache: &Path, version: &Version) -> bool {
    let bins = binaries_in(cache, version);
    version_dir(cache, version).join("built.json").is_file()
        && bins.node.is_file()
        && bins.chain.is_file()
}

/// The build log of `version` (kept after a build, failed or not).
pub fn log_path(cache: &Path, version: &Version) -> PathBuf {
    version_dir(cache, version).join("build.log")
}

/// This workspace's RocksDB archive, if its build made one: `<profile dir>/build/
/// librocksdb-sys-*/out/librocksdb.a`, the newest when there are several.
pub fn workspace_rocksdb_archive(profile_dir: &Path) -> Option<PathBuf> {
    let build = profile_dir.join("build");
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&build)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("librocksdb-sys-")
        })
        .map(|entry| entry.path().join("out").join("librocksdb.a"))
        .filter_map(|path| {
            let modified = path.metadata().ok()?.modified().ok()?;
            Some((modified, path))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, path)| path)
}

/// Build `version` unless it is built already.
pub fn build(version: &Version, plan: &BuildPlan) -> Result<Outcome, VersionsError> {
    if is_built(&plan.cache, version) {
        return Ok(Outcome::Cached);
    }
    let started = Instant::now();
    let dir = version_dir(&plan.cache, version);
    std::fs::create_dir_all(&dir).map_err(|e| VersionsError::io(&dir, e))?;
    let log = log_path(&plan.cache, version);
    let src = dir.join("src");
    extract(version, plan, &dir, &src)?;
    let target = plan.cache.join("target");
    let log_file = std::fs::File::create(&log).map_err(|e| VersionsError::io(&log, e))?;
    let err_file = log_file
        .try_clone()
        .map_err(|e| VersionsError::io(&log, e))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--locked",
        "--bins",
        "-p",
        "dlp-node",
        "-p",
        "dlp-chain",
    ])
    .current_dir(&src)
    .env("CARGO_TARGET_DIR", &target)
    .env("CARGO_TERM_COLOR", "never")
    .stdin(Stdio::null())
    .stdout(log_file)
    .stderr(err_file);
    let shared_rocksdb = match plan.rocksdb_archive.as_deref().and_then(Path::parent) {
        Some(lib_dir) => {
            cmd.env("ROCKSDB_LIB_DIR", lib_dir)
                .env("ROCKSDB_STATIC", "1");
            true
        }
        None => {
            cmd.env_remove("ROCKSDB_LIB_DIR");
            false
        }
    };
    let status = cmd
        .status()
        .map_err(|e| VersionsError::Setup(format!("cannot run cargo: {e}")))?;
    if !status.success() {
        return Err(VersionsError::Build {
            name: version.name.clone(),
            commit: version.commit.clone(),
            tail: tail(&log, 25),
            log,
        });
    }
    let bins = binaries_in(&plan.cache, version);
    let bin_dir = dir.join("bin");
    std::fs::create_dir_all(&bin_dir).map_err(|e| VersionsError::io(&bin_dir, e))?;
    for (built, name) in [(&bins.node, "dlp-node"), (&bins.chain, "dlp-chain")] {
        copy_atomically(&target.join("debug").join(name), built)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let stamp = Stamp {
        name: version.name.clone(),
        commit: version.commit.clone(),
        seconds,
        shared_rocksdb,
    };
    let text = serde_json::to_string_pretty(&stamp)
        .map_err(|e| VersionsError::Setup(format!("built.json: {e}")))?;
    write_atomically(&dir.join("built.json"), text.as_bytes())?;
    // The sources are only needed to build; the target directory keeps what a rebuild reuses.
    let _ = std::fs::remove_dir_all(&src);
    Ok(Outcome::Built {
        seconds,
        shared_rocksdb,
    })
}

/// `git archive <commit>` of the repository, unpacked into `src` (replacing a partial one).
fn extract(
    version: &Version,
    plan: &BuildPlan,
    dir: &Path,
    src: &Path,
) -> Result<(), VersionsError> {
    let present = Command::new("git")
        .arg("-C")
        .arg(&plan.repo)
        .args(["cat-file", "-e", &format!("{}^{{commit}}", version.commit)])
        .stderr(Stdio::null())
        .status()
        .map_err(|e| VersionsError::Setup(format!("cannot run git: {e}")))?;
    if !present.success() {
        let shallow = plan.repo.join(".git").join("shallow").exists();
        return Err(VersionsError::MissingCommit {
            name: version.name.clone(),
            commit: version.commit.clone(),
            repo: plan.repo.clone(),
            hint: if shallow {
                " (a shallow clone: `git fetch --unshallow`)".into()
            } else {
                String::new()
            },
        });
    }
    if src.exists() {
        std::fs::remove_dir_all(src).map_err(|e| VersionsError::io(src, e))?;
    }
    std::fs::create_dir_all(src).map_err(|e| VersionsError::io(src, e))?;
    let tar = dir.join("src.tar");
    let archived = Command::new("git")
        .arg("-C")
        .arg(&plan.repo)
        .args(["archive", "--format=tar", "-o"])
        .arg(&tar)
        .arg(&version.commit)
        .status()
        .map_err(|e| VersionsError::Setup(format!("cannot run git archive: {e}")))?;
    let unpacked = archived.success()
        && Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(src)
            .status()
            .map_err(|e| VersionsError::Setup(format!("cannot run tar: {e}")))?
            .success();
    let _ = std::fs::remove_file(&tar);
    if unpacked {
        Ok(())
    } else {
        Err(VersionsError::Setup(format!(
            "version {}: cannot unpack commit {} into {}",
            version.name,
            version.commit,
            src.display()
        )))
    }
}

fn copy_atomically(from: &Path, to: &Path) -> Result<(), VersionsError> {
    let tmp = to.with_extension("partial");
    std::fs::copy(from, &tmp).map_err(|e| VersionsError::io(from, e))?;
    std::fs::rename(&tmp, to).map_err(|e| VersionsError::io(to, e))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), VersionsError> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(|e| VersionsError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| VersionsError::io(path, e))
}

/// The last `lines` lines of a file (what a failed build said last).
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versions::Dialect;

    fn version(commit: &str) -> Version {
        Version {
            name: "old".into(),
            commit: commit.into(),
            about: String::new(),
            dialect: Dialect::Current,
            wire: 2,
            records: 2,
            manifest: 2,
            stale_notice: true,
        }
    }

    #[test]
    fn a_commit_the_repository_lacks_is_named_before_anything_builds() {
        let cache = tempfile::tempdir().expect("tempdir");
        let repo = tempfile::tempdir().expect("tempdir");
        let git = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(repo.path())
                .args(args)
                .output()
                .expect("git")
        };
        git(&["init", "-q"]);
        let plan = BuildPlan {
            repo: repo.path().to_path_buf(),
            cache: cache.path().to_path_buf(),
            rocksdb_archive: None,
        };
        let missing = version("0123456789abcdef0123456789abcdef01234567");
        let err = build(&missing, &plan).expect_err("no such commit");
        let text = err.to_string();
        assert!(
            text.contains(
                "commit 0123456789abcdef0123456789abcdef01234567 is not in the repository"
            ),
            "{text}"
        );
        assert!(!is_built(&plan.cache, &missing));
    }

    #[test]
    fn the_newest_rocksdb_archive_of_the_workspace_is_found() {
        let profile = tempfile::tempdir().expect("tempdir");
        assert_eq!(workspace_rocksdb_archive(profile.path()), None);
        let out = profile.path().join("build/librocksdb-sys-1234/out");
        std::fs::create_dir_all(&out).expect("mkdir");
        std::fs::write(out.join("librocksdb.a"), b"!<arch>\n").expect("write");
        std::fs::create_dir_all(profile.path().join("build/librocksdb-sys-5678/out"))
            .expect("mkdir");
        assert_eq!(
            workspace_rocksdb_archive(profile.path()),
            Some(out.join("librocksdb.a"))
        );
    }
}
