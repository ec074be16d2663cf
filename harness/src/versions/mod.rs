//! Named earlier builds of the node (`versions.toml`), so a release is gated against the last
//! one: a scenario runs a node of an old build (`version = "pre-routing"`), upgrades it in place,
//! restores a backup an old build wrote.
//!
//! The catalog is the repository's `versions.toml`, compiled in (a scenario's version names are
//! checked at `check` without looking for files). Each version is built once by `dlp-harness
//! versions build` ([`build`]) into a cache keyed by commit; running one only looks its binaries
//! up there ([`Catalog::binaries`]), and says how to build them when they are missing.

pub mod build;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

/// The committed catalog (the repository's `versions.toml`).
const CATALOG_TEXT: &str = include_str!("../../../versions.toml");

/// The name a scenario may use for this build itself (also the default).
pub const CURRENT: &str = "current";

/// Where [`Catalog::cache_dir`] is, when set (else `<target dir>/dlp-versions`).
pub const CACHE_ENV: &str = "DLP_VERSIONS_CACHE";

/// Why a version could not be named, built or found.
#[derive(Debug, thiserror::Error)]
pub enum VersionsError {
    #[error("versions.toml: {0}")]
    Catalog(String),
    #[error("unknown version {name:?}; versions.toml names: {known}")]
    Unknown { name: String, known: String },
    #[error(
        "version {name} ({commit}) is not built in {}: run `dlp-harness versions build`",
        cache.display()
    )]
    NotBuilt {
        name: String,
        commit: String,
        cache: PathBuf,
    },
    #[error("version {name}: commit {commit} is not in the repository at {}{hint}", repo.display())]
    MissingCommit {
        name: String,
        commit: String,
        repo: PathBuf,
        hint: String,
    },
    #[error("version {name} ({commit}) does not build; the last lines of {}:\n{tail}", log.display())]
    Build {
        name: String,
        commit: String,
        log: PathBuf,
        tail: String,
    },
    #[error("{0}")]
    Setup(String),
    #[error("I/O on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl VersionsError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        VersionsError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How the harness configures and drives a build (its config keys, its restore flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// Before routing: no `graph` RPC module, no `fiber.allow_non_loopback`, no `backup.keep`,
    /// no `[audit]` reveal, mutual-stale or force-close keys, no `[channel] fee_rate`, no
    /// `--accept-undigested-backup`.
    PreRouting,
    /// What this build reads.
    Current,
}

/// One named earlier build.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {
    pub name: String,
    /// The full commit id.
    pub commit: String,
    /// One line: what distinguishes it.
    pub about: String,
    pub dialect: Dialect,
    /// The wire codec version it speaks.
    pub wire: u8,
    /// The channel record encoding version it writes.
    pub records: u8,
    /// The backup manifest format it writes.
    pub manifest: u32,
    /// Whether it knows the `StaleNotice` message.
    pub stale_notice: bool,
}

impl Version {
    /// The commit's first 7 digits, for lines a person reads.
    pub fn short(&self) -> &str {
        &self.commit[..7]
    }
}

/// A version's binaries, built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    pub node: PathBuf,
    pub chain: PathBuf,
}

/// The named versions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(rename = "version")]
    pub versions: Vec<Version>,
}

impl Catalog {
    /// The committed catalog (parsed once; its own test keeps it valid).
    pub fn committed() -> Result<&'static Catalog, VersionsError> {
        static CATALOG: OnceLock<Result<Catalog, String>> = OnceLock::new();
        CATALOG
            .get_or_init(|| Catalog::parse(CATALOG_TEXT).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| VersionsError::Catalog(e.clone()))
    }

    /// Parse and check a catalog: unique names of lowercase letters, digits and `-` (not
    /// `current`), full 40-digit commits.
    pub fn parse(text: &str) -> Result<Catalog, VersionsError> {
        let catalog: Catalog =
            toml::from_str(text).map_err(|e| VersionsError::Catalog(e.to_string()))?;
        let mut seen = std::collections::BTreeSet::new();
        for v in &catalog.versions {
            let valid_name = !v.name.is_empty()
                && v.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid_name || v.name == CURRENT {
                return Err(VersionsError::Catalog(format!(
                    "version name {:?}: lowercase letters, digits and '-', not {CURRENT:?}",
                    v.name
                )));
            }
            if v.commit.len() != 40 || !v.commit.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(VersionsError::Catalog(format!(
                    "version {}: commit {:?} is not a full 40-digit commit id",
                    v.name, v.commit
                )));
            }
            if !seen.insert(v.name.as_str()) {
                return Err(VersionsError::Catalog(format!(
                    "version {} is named twice",
                    v.name
                )));
            }
        }
        Ok(catalog)
    }

    /// The version named `name` (not [`CURRENT`]).
    pub fn get(&self, name: &str) -> Result<&Version, VersionsError> {
        self.versions
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| VersionsError::Unknown {
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }

    /// Every name a scenario may use: [`CURRENT`] and the catalog's.
    pub fn names(&self) -> Vec<&str> {
        std::iter::once(CURRENT)
            .chain(self.versions.iter().map(|v| v.name.as_str()))
            .collect()
    }

    /// Where built versions are kept: `$DLP_VERSIONS_CACHE`, else `dlp-versions` in the target
    /// directory this program was built in (so CI's persistent target directory keeps them).
    pub fn cache_dir() -> Result<PathBuf, VersionsError> {
        if let Some(dir) = std::env::var_os(CACHE_ENV) {
            return Ok(PathBuf::from(dir));
        }
        Ok(target_dir()?.join("dlp-versions"))
    }

    /// `version`'s binaries from the cache, or how to build them.
    pub fn binaries(&self, version: &Version) -> Result<Binaries, VersionsError> {
        let cache = Self::cache_dir()?;
        let bins = build::binaries_in(&cache, version);
        if build::is_built(&cache, version) {
            Ok(bins)
        } else {
            Err(VersionsError::NotBuilt {
                name: version.name.clone(),
                commit: version.short().to_string(),
                cache,
            })
        }
    }
}

/// The profile directory this program runs from (`target/debug`), found as the first ancestor
/// of the executable holding `deps/` (a binary sits in it, a test in its `deps/`).
pub fn profile_dir() -> Result<PathBuf, VersionsError> {
    let exe = std::env::current_exe()
        .map_err(|e| VersionsError::Setup(format!("cannot find this executable: {e}")))?;
    exe.ancestors()
        .skip(1)
        .take(3)
        .find(|dir| dir.join("deps").is_dir())
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            VersionsError::Setup(format!(
                "{} is not in a cargo target directory; set {CACHE_ENV}",
                exe.display()
            ))
        })
}

fn target_dir() -> Result<PathBuf, VersionsError> {
    let profile = profile_dir()?;
    Ok(profile.parent().unwrap_or(&profile).to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_catalog_is_valid_and_names_the_builds_the_gate_needs() {
        let catalog = Catalog::committed().expect("versions.toml");
        let pre = catalog.get("pre-routing").expect("pre-routing");
        assert_eq!(pre.commit, "d260f970797a4bf8199525be2108726f6aefc98d");
        assert_eq!((pre.wire, pre.records, pre.manifest), (1, 1, 1));
        assert!(!pre.stale_notice);
        assert!(catalog.versions.len() >= 2);
        assert_eq!(catalog.names()[0], CURRENT);
    }

    #[test]
    fn bad_catalogs_are_refused_with_the_reason() {
        let one = |name: &str, commit: &str| {
            format!(
                "[[version]]\nname = \"{name}\"\ncommit = \"{commit}\"\nabout = \"x\"\n\
                 dialect = \"current\"\nwire = 2\nrecords = 2\nmanifest = 2\nstale_notice = true\n"
            )
        };
        let full = "d260f970797a4bf8199525be2108726f6aefc98d";
        let err = Catalog::parse(&one("Old", full)).expect_err("uppercase");
        assert!(err.to_string().contains("lowercase"), "{err}");
        let err = Catalog::parse(&one("current", full)).expect_err("reserved");
        assert!(err.to_string().contains("current"), "{err}");
        let err = Catalog::parse(&one("old", "d260f97")).expect_err("short commit");
        assert!(err.to_string().contains("40-digit"), "{err}");
        let twice = format!("{}{}", one("old", full), one("old", full));
        let err = Catalog::parse(&twice).expect_err("twice");
        assert!(err.to_string().contains("named twice"), "{err}");
        let err = Catalog::parse(&one("old", full).replace("current", "future"))
            .expect_err("unknown dialect");
        assert!(err.to_string().contains("future"), "{err}");
        let catalog = Catalog::parse(&one("old", full)).expect("valid");
        let err = catalog.get("older").expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown version \"older\"; versions.toml names: current, old"
        );
    }
}
