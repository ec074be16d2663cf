//! Small filesystem helpers with the durability the store and restore need: copies that are
//! fsynced, directory syncs after renames, atomic file replacement, and file listings that
//! refuse anything that is not a plain file or directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// fsync a file's data and metadata.
pub(crate) fn sync_file(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// fsync a directory, making renames and new entries in it durable.
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Read at most `len` bytes from the start of a file.
pub(crate) fn read_prefix(path: &Path, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len);
    File::open(path)?.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Write `bytes` to `path` atomically: a temporary file in the same directory is written,
/// fsynced, given `mode`, renamed over `path`, and the directory is fsynced.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} has no file name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Create `path` with `bytes` and `mode`, failing if it exists; fsynced.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// A regular file found by [`list_files`], relative to the listed root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the root, with `/` separators.
    pub relative: String,
    /// Size in bytes.
    pub size: u64,
}

/// Every regular file under `root`, recursively, sorted by relative path. Symlinks and other
/// special files are an error: a store or backup holds only plain files.
pub fn list_files(root: &Path) -> io::Result<Vec<FileEntry>> {
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<FileEntry>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            walk(root, &path, out)?;
        } else if meta.is_file() {
            let relative = path
                .strip_prefix(root)
                .map_err(io::Error::other)?
                .to_string_lossy()
                .into_owned();
            out.push(FileEntry {
                relative,
                size: meta.len(),
            });
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a regular file or directory", path.display()),
            ));
        }
    }
    Ok(())
}

/// Total size of the regular files under `root`.
pub fn tree_size(root: &Path) -> io::Result<u64> {
    Ok(list_files(root)?.iter().map(|f| f.size).sum())
}

/// Error of [`copy_files`], naming the file that failed.
#[derive(Debug, thiserror::Error)]
#[error("copying {} to {}: {source}", from.display(), to.display())]
pub struct CopyError {
    pub from: PathBuf,
    pub to: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Copy the listed files from `from_root` into `to_root` (created if needed), fsyncing every
/// file and directory. `before_file` runs before each file is copied and may fail it (used for
/// fault injection). Returns the bytes copied.
pub fn copy_files(
    from_root: &Path,
    to_root: &Path,
    files: &[FileEntry],
    before_file: &mut dyn FnMut(&Path) -> io::Result<()>,
) -> Result<u64, CopyError> {
    let mut dirs = vec![to_root.to_path_buf()];
    let mut copied = 0;
    let err = |from: &Path, to: &Path, source| CopyError {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    };
    fs::create_dir_all(to_root).map_err(|e| err(from_root, to_root, e))?;
    for file in files {
        let src = from_root.join(&file.relative);
        let dst = to_root.join(&file.relative);
        if let Some(parent) = dst.parent()
            && !dirs.iter().any(|d| d == parent)
        {
            fs::create_dir_all(parent).map_err(|e| err(&src, &dst, e))?;
            dirs.push(parent.to_path_buf());
        }
        before_file(&src).map_err(|e| err(&src, &dst, e))?;
        copied += fs::copy(&src, &dst).map_err(|e| err(&src, &dst, e))?;
        sync_file(&dst).map_err(|e| err(&src, &dst, e))?;
    }
    for dir in &dirs {
        sync_dir(dir).map_err(|e| err(from_root, dir, e))?;
    }
    Ok(copied)
}

/// SHA-256 of a file's content, streamed (constant memory at any size). Returns the number of
/// bytes read and the digest as lower-case hex.
pub fn sha256_file(path: &Path) -> io::Result<(u64, String)> {
    use sha2::{Digest, Sha256};
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex::encode(hasher.finalize())))
}

pub(crate) use dlp_node_api::unix_ms;
