//! The container image: built on this machine from the workspace's own `dlp-node`, `dlp-chain`
//! and `dlp-container-init` binaries, never pulled (the machines have no registry).
//!
//! The image is a root with the two binaries and the shared libraries `ldd` says they need,
//! imported with `docker import` (no base image, no Dockerfile): a few hundred MB, started in
//! well under a second. Its tag is a content hash of everything in it, so an image is built once
//! per binary content and reused by every run after; the check-and-build happens under a file
//! lock, so several nextest processes starting at once build it once and never see half an
//! image. Images of earlier builds (another hash, same label) are removed when a new one is
//! made, unless a container still uses them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};
use testcontainers::bollard::Docker;

use crate::error::HarnessError;

/// Repository of the image.
pub(super) const IMAGE_NAME: &str = "dlp-harness-node";
/// Label every image (and container) of the harness carries.
pub(super) const IMAGE_LABEL: &str = "dlp-harness.image";
/// Where the binaries live inside the image.
pub(super) const NODE_BIN: &str = "/dlp-node";
pub(super) const CHAIN_BIN: &str = "/dlp-chain";
/// Every container's first process (`dlp-container-init`: it idles; see `pool.rs`).
pub(super) const INIT_BIN: &str = "/dlp-container-init";
/// strace, when the host has it: `crash_restore` kills a restore in a container through it.
pub(super) const STRACE_BIN: &str = "/strace";

/// The image to run, by tag.
#[derive(Debug, Clone)]
pub(super) struct Image {
    pub tag: String,
    /// Built by this call (false: it existed already).
    pub built: bool,
    pub build_ms: u128,
    /// Whether it carries strace ([`STRACE_BIN`]).
    pub has_strace: bool,
}

/// Where a named earlier build's `dlp-node` lives inside the image.
pub(super) fn version_node_bin(name: &str) -> String {
    format!("/versions/{name}/dlp-node")
}

/// The `dlp-node` inside the image that runs a node of `build`.
pub(super) fn node_bin(build: &crate::driver::NodeBuild) -> String {
    match build {
        crate::driver::NodeBuild::Current => NODE_BIN.to_string(),
        crate::driver::NodeBuild::Named(named) => version_node_bin(&named.name),
    }
}

/// The files of the image's root: (path inside the image, path on the host).
fn contents() -> Result<Vec<(PathBuf, PathBuf)>, HarnessError> {
    let node = super::super::process::find_binary("DLP_NODE_BIN", "dlp-node")?;
    let chain = super::super::process::find_binary("DLP_CHAIN_BIN", "dlp-chain")?;
    let init = super::super::process::find_binary("DLP_CONTAINER_INIT_BIN", "dlp-container-init")?;
    let mut files = vec![
        (PathBuf::from(NODE_BIN), node.clone()),
        (PathBuf::from(CHAIN_BIN), chain.clone()),
        (PathBuf::from(INIT_BIN), init.clone()),
    ];
    let mut binaries = vec![node, chain, init];
    // Every named earlier build that is built (`versions build`): a node of that version runs
    // its binary from the same image.
    if let Ok(catalog) = crate::versions::Catalog::committed() {
        for version in &catalog.versions {
            if let Ok(built) = catalog.binaries(version) {
                files.push((
                    PathBuf::from(version_node_bin(&version.name)),
                    built.node.clone(),
                ));
                binaries.push(built.node);
            }
        }
    }
    if let Ok(strace) = super::super::strace::locate() {
        files.push((PathBuf::from(STRACE_BIN), strace.clone()));
        binaries.push(strace);
    }
    for binary in &binaries {
        for library in libraries(binary)? {
            if !files.iter().any(|(inside, _)| *inside == library) {
                files.push((library.clone(), library));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The shared libraries a binary loads, as `ldd` resolves them on this host.
fn libraries(binary: &Path) -> Result<Vec<PathBuf>, HarnessError> {
    let out = Command::new("ldd").arg(binary).output().map_err(|e| {
        HarnessError::Setup(format!(
            "cannot build the container image: running ldd on {}: {e} (install libc-bin)",
            binary.display()
        ))
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let found = parse_ldd(binary, &text)?;
    if found.is_empty() && !out.status.success() {
        return Err(HarnessError::Setup(format!(
            "cannot build the container image: ldd {} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(found)
}

/// The library paths in `ldd`'s output for `binary`; a library it cannot find is an error
/// naming it.
fn parse_ldd(binary: &Path, text: &str) -> Result<Vec<PathBuf>, HarnessError> {
    let mut found = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.contains("not found") {
            return Err(HarnessError::Setup(format!(
                "cannot build the container image: {} needs a library this machine lacks: {line}",
                binary.display()
            )));
        }
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux... (0x...)"
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.trim(),
            None => line,
        };
        if let Some(path) = path
            .split_whitespace()
            .next()
            .filter(|p| p.starts_with('/'))
        {
            found.push(PathBuf::from(path));
        }
    }
    Ok(found)
}

/// The content hash of the image's files (paths inside and each file's SHA-256), hex. Reading
/// ~200 MB of binaries costs a few hundred milliseconds, and every nextest test process asks, so
/// each file's digest is remembered (in the temp directory) by its identity: path, size,
/// modification time and inode. A rebuilt binary has a new identity and is read again.
fn content_hash(files: &[(PathBuf, PathBuf)]) -> Result<String, HarnessError> {
    use std::collections::BTreeMap;
    use std::os::unix::fs::MetadataExt;
    let cache_path = std::env::temp_dir().join("dlp-harness-image-digests.json");
    let mut cache: BTreeMap<String, String> = std::fs::read(&cache_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let before = cache.len();
    let mut hasher = Sha256::new();
    for (inside, host) in files {
        let meta = std::fs::metadata(host).map_err(|e| HarnessError::io(host, e))?;
        let identity = format!(
            "{}|{}|{}.{}|{}",
            host.display(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ino()
        );
        let digest = match cache.get(&identity) {
            Some(digest) => digest.clone(),
            None => {
                let (_, digest) =
                    dlp_node::fsutil::sha256_file(host).map_err(|e| HarnessError::io(host, e))?;
                cache.insert(identity, digest.clone());
                digest
            }
        };
        hasher.update(inside.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(digest.as_bytes());
    }
    if cache.len() != before {
        // Best effort: a lost update only costs a re-read next time.
        if let Ok(json) = serde_json::to_vec(&cache) {
            let _ = dlp_node::fsutil::write_atomic(&cache_path, &json, 0o644);
        }
    }
    Ok(hex::encode(&hasher.finalize()[..8]))
}

/// Make sure the image of the current binaries exists; build it if not.
pub(super) async fn ensure(docker: &Docker) -> Result<Image, HarnessError> {
    let files = tokio::task::spawn_blocking(contents)
        .await
        .map_err(|e| HarnessError::Setup(e.to_string()))??;
    let has_strace = files
        .iter()
        .any(|(inside, _)| inside == Path::new(STRACE_BIN));
    let hashed = files.clone();
    let tag = tokio::task::spawn_blocking(move || content_hash(&hashed))
        .await
        .map_err(|e| HarnessError::Setup(e.to_string()))??;
    let reference = format!("{IMAGE_NAME}:{tag}");
    if docker.inspect_image(&reference).await.is_ok() {
        return Ok(Image {
            tag,
            built: false,
            build_ms: 0,
            has_strace,
        });
    }
    // One builder at a time on this machine; whoever waited finds the image built.
    let lock_path = std::env::temp_dir().join("dlp-harness-image.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| HarnessError::io(&lock_path, e))?;
    let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
        .await
        .map_err(|e| HarnessError::Setup(e.to_string()))?
        .map_err(|e| HarnessError::io(&lock_path, e))?;
    if docker.inspect_image(&reference).await.is_ok() {
        drop(lock);
        return Ok(Image {
            tag,
            built: false,
            build_ms: 0,
            has_strace,
        });
    }
    let started = Instant::now();
    let build_tag = tag.clone();
    tokio::task::spawn_blocking(move || build(&files, &build_tag))
        .await
        .map_err(|e| HarnessError::Setup(e.to_string()))??;
    let build_ms = started.elapsed().as_millis();
    remove_older_images(docker, &tag).await;
    drop(lock);
    Ok(Image {
        tag,
        built: true,
        build_ms,
        has_strace,
    })
}

/// Lay the files out in a scratch root and `docker import` it.
fn build(files: &[(PathBuf, PathBuf)], tag: &str) -> Result<(), HarnessError> {
    let scratch = tempfile::tempdir().map_err(|e| HarnessError::Setup(e.to_string()))?;
    let root = scratch.path().join("root");
    for (inside, host) in files {
        let to = root.join(inside.strip_prefix("/").unwrap_or(inside));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| HarnessError::io(parent, e))?;
        }
        // Follows symlinks: the library itself goes in, under the name the loader asks for.
        std::fs::copy(host, &to).map_err(|e| HarnessError::io(host, e))?;
    }
    // Nodes write nothing outside their mounted home, but tempfile users need /tmp.
    std::fs::create_dir_all(root.join("tmp")).map_err(|e| HarnessError::io(&root, e))?;
    let script = format!(
        "tar -C '{}' -c . | docker import --change 'LABEL {IMAGE_LABEL}=node' \
         --change 'ENV DLP_NODE_LOG=info' - '{IMAGE_NAME}:{tag}'",
        root.display()
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .map_err(|e| HarnessError::Setup(format!("cannot run docker import: {e}")))?;
    if !out.status.success() {
        return Err(HarnessError::Setup(format!(
            "building the container image {IMAGE_NAME}:{tag} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Remove images of earlier builds (best effort: one still in use stays).
async fn remove_older_images(docker: &Docker, current: &str) {
    use std::collections::HashMap;
    use testcontainers::bollard::query_parameters::{
        ListImagesOptionsBuilder, RemoveImageOptionsBuilder,
    };
    let filters: HashMap<&str, Vec<&str>> = HashMap::from([
        ("label", vec![IMAGE_LABEL]),
        ("reference", vec![IMAGE_NAME]),
    ]);
    let Ok(images) = docker
        .list_images(Some(
            ListImagesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
    else {
        return;
    };
    let keep = format!("{IMAGE_NAME}:{current}");
    for image in images {
        if image.repo_tags.contains(&keep) {
            continue;
        }
        let removed = docker
            .remove_image(
                &image.id,
                Some(RemoveImageOptionsBuilder::new().build()),
                None,
            )
            .await;
        if removed.is_ok() {
            tracing::info!(image = %image.id, "removed a container image of an earlier build");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_is_read_into_library_paths() {
        let libs = libraries(Path::new("/bin/sh")).expect("sh has libraries");
        assert!(
            libs.iter().any(|l| l.to_string_lossy().contains("libc")),
            "{libs:?}"
        );
    }

    #[test]
    fn a_library_ldd_cannot_find_is_named() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibrocksdb.so.9 => not found\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n";
        let err = parse_ldd(Path::new("/x/dlp-node"), text).expect_err("missing library");
        let message = err.to_string();
        assert!(message.contains("librocksdb.so.9"), "{message}");
        assert!(message.contains("/x/dlp-node"), "{message}");
        let ok = "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n\
                  \t/lib64/ld-linux-x86-64.so.2 (0x2)\n";
        assert_eq!(
            parse_ldd(Path::new("/x"), ok).expect("parsed"),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }

    #[test]
    fn the_hash_changes_with_the_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("bin");
        std::fs::write(&file, b"one").expect("write");
        let files = vec![(PathBuf::from("/bin"), file.clone())];
        let first = content_hash(&files).expect("hash");
        assert_eq!(first, content_hash(&files).expect("hash"));
        std::fs::write(&file, b"two").expect("write");
        assert_ne!(first, content_hash(&files).expect("hash"));
    }
}
