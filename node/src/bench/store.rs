//! `dlp-node bench-store`: measure hot backup and offline restore at several store sizes on
//! both backends, next to a plain recursive copy + fsync of the same files.
//!
//! The point of the table is to show what each backup mechanism costs relative to the dumbest
//! correct alternative (copying the files), and how restore's validation (a full read with
//! checksums / `quick_check`) adds to its copy. Values are pseudo-random (seeded) so neither
//! engine can compress them; the page cache is warm (we cannot drop it portably), which favours
//! every column equally.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dlp_node::backup::{DigestCache, create_backup_with};
use dlp_node::channel_record::{ChannelId, ChannelRecord};
use dlp_node::failpoint::Failpoints;
use dlp_node::fsutil;
use dlp_node::keys::NodeKeys;
use dlp_node::layout::BaseDir;
use dlp_node::restore::{RestoreOptions, restore};
use dlp_node::store::{WriteBatch, open_store};
use dlp_node_api::{Backend, ChannelState};

use super::{human_bytes, human_duration};

/// What to measure.
#[derive(Debug, Clone)]
pub(crate) struct BenchOptions {
    /// Approximate store sizes, in bytes of values.
    pub(crate) sizes: Vec<u64>,
    pub(crate) backends: Vec<Backend>,
    /// Where scratch stores are created (removed afterwards).
    pub(crate) work_dir: PathBuf,
    /// Bytes per value.
    pub(crate) value_size: usize,
    /// Seed of the value generator.
    pub(crate) seed: u64,
    /// Times each measurement is repeated; the table shows the median.
    pub(crate) repeat: usize,
}

/// One measured row.
#[derive(Debug, Clone)]
pub(crate) struct BenchRow {
    pub(crate) backend: Backend,
    pub(crate) store_bytes: u64,
    pub(crate) entries: u64,
    pub(crate) fill: Duration,
    /// The first backup of the store: every file digested.
    pub(crate) first_backup: Duration,
    pub(crate) first_backup_digest: Duration,
    /// Later backups (median): digests of unchanged SSTs come from the cache.
    pub(crate) backup: Duration,
    /// Part of `backup` spent computing the manifest's SHA-256 digests.
    pub(crate) backup_digest: Duration,
    pub(crate) restore_total: Duration,
    pub(crate) restore_validate: Duration,
    /// Part of `restore_validate` spent verifying the digests.
    pub(crate) restore_digest: Duration,
    pub(crate) restore_copy: Duration,
    pub(crate) restore_mark_swap: Duration,
    pub(crate) plain_copy: Duration,
}

/// Why the benchmark failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BenchError {
    #[error("bench: {0}")]
    Step(String),
}

fn step<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> BenchError + '_ {
    move |e| BenchError::Step(format!("{what}: {e}"))
}

/// Number of channel records written into every store (all `ChannelReady`, so restore has
/// real Stale marking to do).
const BENCH_CHANNELS: u8 = 16;
/// Values per write batch.
const BATCH_ENTRIES: u64 = 256;

/// Run the benchmark, reporting progress through `progress`.
pub(crate) fn run(
    options: &BenchOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<BenchRow>, BenchError> {
    std::fs::create_dir_all(&options.work_dir).map_err(step("create work dir"))?;
    let mut rows = Vec::new();
    for &size in &options.sizes {
        for &backend in &options.backends {
            progress(&format!("{backend} {}: filling", human_bytes(size)));
            rows.push(run_one(options, backend, size, progress)?);
        }
    }
    Ok(rows)
}

fn run_one(
    options: &BenchOptions,
    backend: Backend,
    size: u64,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchRow, BenchError> {
    let scratch = tempfile::Builder::new()
        .prefix("dlp-bench-")
        .tempdir_in(&options.work_dir)
        .map_err(step("create scratch dir"))?;
    let base = BaseDir::new(scratch.path().join("node"));
    let (keys, _) = NodeKeys::load_or_create(&base).map_err(step("create keys"))?;
    let store = open_store(backend, &base.store_dir()).map_err(step("open store"))?;

    let fill_started = Instant::now();
    for i in 0..BENCH_CHANNELS {
        ChannelRecord::new(
            ChannelId([i; 32]),
            keys.node_pubkey_hex(),
            ChannelState::ChannelReady,
            10,
            10,
        )
        .save(store.as_ref())
        .map_err(step("write channel record"))?;
    }
    let entries = size.div_ceil(options.value_size as u64);
    let mut rng = XorShift(options.seed | 1);
    let mut next = 0u64;
    while next < entries {
        let mut batch = WriteBatch::new();
        for key in next..(next + BATCH_ENTRIES).min(entries) {
            let mut value = vec![0u8; options.value_size];
            rng.fill(&mut value);
            let mut k = vec![0x01];
            k.extend_from_slice(&key.to_be_bytes());
            batch.put(k, value);
        }
        next += batch.len() as u64;
        store.write(&batch).map_err(step("fill store"))?;
    }
    let fill = fill_started.elapsed();
    let store_bytes = fsutil::tree_size(&base.store_dir()).map_err(step("measure store"))?;

    let repeat = options.repeat.max(1);
    progress(&format!(
        "{backend} {}: hot backup x{repeat}",
        human_bytes(size)
    ));
    // The first backup digests every file; later ones reuse the digests of unchanged SSTs, as
    // a running node does (its cache lives as long as the node).
    let cache = DigestCache::default();
    let mut backups = Vec::new();
    let mut backup_times = Vec::new();
    let mut first_backup = None;
    for r in 0..=repeat {
        let target = scratch.path().join(format!("backup-{r}"));
        flush_dirty_pages();
        let started = Instant::now();
        let info = create_backup_with(store.as_ref(), &base, &keys, &target, Some(&cache))
            .map_err(step("backup"))?;
        let times = (started.elapsed(), info.digest_time);
        match first_backup {
            None => first_backup = Some(times),
            Some(_) => backup_times.push(times),
        }
        backups.push(info);
    }
    backup_times.sort();
    let (backup, backup_digest) = backup_times[backup_times.len() / 2];
    let (first_backup, first_backup_digest) = first_backup.unwrap_or_default();
    drop(store);
    let backup_dir = backups[0].dir.clone();
    for extra in &backups[1..] {
        std::fs::remove_dir_all(&extra.dir).map_err(step("remove extra backup"))?;
    }

    progress(&format!(
        "{backend} {}: plain copy + fsync x{repeat}",
        human_bytes(size)
    ));
    let files = fsutil::list_files(&backup_dir).map_err(step("list backup"))?;
    let mut plain_times = Vec::new();
    for r in 0..repeat {
        let copy_dir = scratch.path().join(format!("plain-copy-{r}"));
        flush_dirty_pages();
        let started = Instant::now();
        fsutil::copy_files(&backup_dir, &copy_dir, &files, &mut |_| Ok(()))
            .map_err(step("plain copy"))?;
        plain_times.push(started.elapsed());
        std::fs::remove_dir_all(&copy_dir).map_err(step("remove plain copy"))?;
    }

    progress(&format!(
        "{backend} {}: restore x{repeat}",
        human_bytes(size)
    ));
    let mut restores = Vec::new();
    for _ in 0..repeat {
        flush_dirty_pages();
        let started = Instant::now();
        let report = restore(
            &base,
            backend,
            &backup_dir,
            &RestoreOptions {
                failpoints: Failpoints::none(),
                accept_undigested: false,
            },
        )
        .map_err(step("restore"))?;
        restores.push((started.elapsed(), report.clone()));
        if let Some(previous) = &report.previous_store {
            std::fs::remove_dir_all(previous).map_err(step("remove replaced store"))?;
        }
    }
    restores.sort_by_key(|(total, _)| *total);
    let (restore_total, report) = restores.swap_remove(restores.len() / 2);

    Ok(BenchRow {
        backend,
        store_bytes,
        entries: entries + u64::from(BENCH_CHANNELS),
        fill,
        first_backup,
        first_backup_digest,
        backup,
        backup_digest,
        restore_total,
        restore_validate: report.validate_time,
        restore_digest: report.digest_time,
        restore_copy: report.copy_time,
        restore_mark_swap: report.mark_and_swap_time,
        plain_copy: median(plain_times),
    })
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Write back dirty pages of earlier steps (the fill, the previous copy) so they are not billed
/// to the next measurement. Best effort: `sync` is in coreutils.
fn flush_dirty_pages() {
    let _ = std::process::Command::new("sync").status();
}

/// Render rows as a Markdown table.
pub(crate) fn render_table(rows: &[BenchRow]) -> String {
    let mut out = String::from(
        "| backend | store on disk | entries | fill | first backup (of it: digests) | hot backup (of it: digests) | restore total | restore: validate | restore: verify digests | restore: copy+fsync | restore: mark Stale+swap | plain copy+fsync |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} ({}) | {} ({}) | {} | {} | {} | {} | {} | {} |\n",
            r.backend,
            human_bytes(r.store_bytes),
            r.entries,
            human_duration(r.fill),
            human_duration(r.first_backup),
            human_duration(r.first_backup_digest),
            human_duration(r.backup),
            human_duration(r.backup_digest),
            human_duration(r.restore_total),
            human_duration(r.restore_validate),
            human_duration(r.restore_digest),
            human_duration(r.restore_copy),
            human_duration(r.restore_mark_swap),
            human_duration(r.plain_copy),
        ));
    }
    out
}

/// Small deterministic generator for incompressible values (not for cryptography).
struct XorShift(u64);

impl XorShift {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            chunk.copy_from_slice(&self.0.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// Default scratch location for the benchmark.
pub(crate) fn default_work_dir() -> PathBuf {
    std::env::temp_dir().join("dlp-bench")
}
