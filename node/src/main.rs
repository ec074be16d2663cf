//! `dlp-node` command line: run a node, restore one offline, or benchmark the stores.
//! The only place `anyhow` is used; everything below it returns typed errors.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

mod bench;

use dlp_node::config::Config;
use dlp_node::failpoint::{FAILPOINTS_ENV, Failpoints};
use dlp_node::layout::BaseDir;
use dlp_node::node::RunningNode;
use dlp_node::restore::{RestoreOptions, RestoreReport, restore};
use dlp_node_api::Backend;

const LONG_ABOUT: &str = "\
Reference payment-channel node of dlp-harness, following Fiber's Data Loss Protection design.

RUN A NODE
  dlp-node -d <BASE> [-c <CONFIG>]
  Creates Fiber's layout on first start (<BASE>/fiber/sk and <BASE>/ckb/key, both 0600, and
  the store in <BASE>/fiber/store/), locks <BASE> while running, serves JSON-RPC over HTTP on
  rpc.listening_addr (default 127.0.0.1:8227) and stops cleanly on SIGTERM or SIGINT.
  Prints `rpc listening on <ADDR>` once ready. Warns loudly on stderr when the RPC listens
  beyond loopback (rpc.allow_non_loopback), naming the address and the modules it exposes.
  RPC limits: 100 calls per batch, 2 MiB request bodies (HTTP 413 beyond, chunked or not),
  10 MiB responses; field limits are listed in the README.

EXIT CODES
  0   stopped by SIGTERM or SIGINT, or the command succeeded
  1   could not start, or the command failed
  2   bad command line
  70  the node core ended unexpectedly (a bug); the RPC server was stopped first
  74  fail-stop: a store write failed (a full disk, say), so the core stopped processing
      rather than let memory run ahead of disk; the RPC server was stopped and the lock
      released. Restart once the store is writable: the node reloads its last durable state
      and its peers resync.

RESTORE A BACKUP (node stopped)
  dlp-node -d <BASE> [-c <CONFIG>] --restore <BACKUP_DIR>
  Refuses if the node is running. Validates the backup first (manifest, backend matches the
  config, files whole and matching their SHA-256 digests, database readable and every record
  decodable, keys belong to it, backup belongs to this node), then moves the current store to
  <BASE>/fiber/store.bak.<unix_ms>, puts the backup's database in place, restores sk and key
  when the backup has both, marks every ChannelReady or ShuttingDown channel Stale, prints what
  it did and exits 0. On any failure the original store is left as it was and the exit code is
  non-zero. A restore killed midway is completed by the next start or restore (see
  <BASE>/fiber/restore.intent); a node never starts on a missing store while
  store.bak.*/store.restoring.* exist. Backups written before digests existed (manifest format
  1) are refused unless --accept-undigested-backup is given.

CONFIG (<BASE>/config.toml unless -c; every key optional)
  [store]
  backend = \"rocksdb\"            # or \"sqlite\"
  [rpc]
  listening_addr = \"127.0.0.1:8227\"
  enabled_modules = [\"info\", \"peer\", \"channel\", \"payment\", \"invoice\"]  # add \"admin\" for backup";

#[derive(Debug, Parser)]
#[command(name = "dlp-node", version, about = "Reference payment-channel node for dlp-harness", long_about = LONG_ABOUT)]
#[command(subcommand_negates_reqs = true, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Base directory of the node (keys, store, backups, lock), as fnn's -d.
    #[arg(short = 'd', long = "base-dir", value_name = "BASE", required = true)]
    base_dir: Option<PathBuf>,

    /// Config file [default: <BASE>/config.toml; all defaults if that file does not exist].
    #[arg(short = 'c', long = "config", value_name = "CONFIG")]
    config: Option<PathBuf>,

    /// Restore the stopped node from BACKUP_DIR (a <BASE>/fiber/backups/<unix_ms> directory),
    /// print what was done, and exit.
    #[arg(long, value_name = "BACKUP_DIR")]
    restore: Option<PathBuf>,

    /// With --restore: accept a backup whose manifest has no content digests (format 1,
    /// written before digests existed). Its files are then checked for structure only, so
    /// damage inside a record goes unnoticed; take a new backup instead when you can.
    #[arg(long, requires = "restore")]
    accept_undigested_backup: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmark hot backup and restore on both backends against a plain copy + fsync.
    BenchStore(BenchArgs),
    /// Benchmark node start time, payments per second between two in-process nodes, and the
    /// store size after N payments, on each backend.
    BenchPayments(PaymentBenchArgs),
}

#[derive(Debug, Args)]
struct PaymentBenchArgs {
    /// Backends to measure.
    #[arg(long, default_value = "rocksdb,sqlite", value_delimiter = ',')]
    backends: Vec<Backend>,
    /// Payments per mode (sequential, then pipelined).
    #[arg(long, default_value_t = 1000)]
    payments: usize,
    /// Restarts measured for the start time (the table shows the median).
    #[arg(long, default_value_t = 5)]
    starts: usize,
    /// Scratch directory [default: $TMPDIR/dlp-bench-payments].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Also write the Markdown table to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Comma-separated store sizes (binary units: K, M, G).
    #[arg(long, default_value = "10M,100M,1G", value_delimiter = ',')]
    sizes: Vec<String>,
    /// Backends to measure.
    #[arg(long, default_value = "rocksdb,sqlite", value_delimiter = ',')]
    backends: Vec<Backend>,
    /// Scratch directory (needs about 4x the largest size free) [default: $TMPDIR/dlp-bench].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Bytes per value.
    #[arg(long, default_value_t = 4096)]
    value_size: usize,
    /// Seed of the value generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Repeat each measurement this many times and report the median.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Also write the Markdown table to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    init_tracing();
    if let Err(err) = run(cli) {
        if let Some(ended) = err.downcast_ref::<NodeEnded>() {
            std::process::exit(i32::from(ended.code));
        }
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

/// The node stopped on its own (its core ended); the process exits with `code`, after the
/// reason was logged and the RPC server stopped.
#[derive(Debug)]
struct NodeEnded {
    code: u8,
}

impl std::fmt::Display for NodeEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the node core ended (exit code {})", self.code)
    }
}

impl std::error::Error for NodeEnded {}

/// How long a node whose core ended waits for its RPC server to finish in-flight calls (a
/// `dev_events` long poll may wait up to 30 s) before it exits anyway.
const CORE_ENDED_GRACE: Duration = Duration::from_secs(10);

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DLP_NODE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::BenchStore(args)) => return bench_store(args),
        Some(Command::BenchPayments(args)) => return bench_payments(args),
        None => {}
    }
    let base = BaseDir::new(cli.base_dir.context("-d <BASE> is required")?);
    let (config, config_path) = Config::load(&base, cli.config.as_deref())?;
    match &config_path {
        Some(path) => tracing::info!(config = %path.display(), "config loaded"),
        None => tracing::info!("no config file, using defaults"),
    }
    match cli.restore {
        Some(backup_dir) => {
            restore_command(&base, &config, backup_dir, cli.accept_undigested_backup)
        }
        None => run_node(base, config),
    }
}

/// Failpoints from `DLP_NODE_FAILPOINTS`, with a loud warning when any are armed.
fn failpoints_from_env() -> Result<Failpoints> {
    match std::env::var(FAILPOINTS_ENV) {
        Ok(spec) => {
            let fp = Failpoints::parse(&spec).map_err(anyhow::Error::msg)?;
            eprintln!("WARNING: {FAILPOINTS_ENV}={spec}: injected failures are armed");
            Ok(fp)
        }
        Err(_) => Ok(Failpoints::none()),
    }
}

fn restore_command(
    base: &BaseDir,
    config: &Config,
    backup_dir: PathBuf,
    accept_undigested: bool,
) -> Result<()> {
    let failpoints = failpoints_from_env()?;
    println!(
        "restoring {} into {} ({} store)",
        backup_dir.display(),
        base.root().display(),
        config.store.backend
    );
    let report = restore(
        base,
        config.store.backend,
        &backup_dir,
        &RestoreOptions {
            failpoints,
            accept_undigested,
        },
    )?;
    print_report(&report);
    Ok(())
}

fn print_report(r: &RestoreReport) {
    if let Some(done) = &r.completed_first {
        println!(
            "completed an interrupted restore of {} first",
            done.backup_dir().display()
        );
    }
    println!("restored backup {}", r.backup_dir.display());
    if r.digests_verified {
        println!(
            "  content: every file matched its SHA-256 ({} bytes checked)",
            r.bytes_verified
        );
    } else {
        println!("  content: NOT verified (format 1 backup accepted without digests)");
    }
    println!(
        "  database: {} files, {} bytes, {} entries -> {}",
        r.files_copied,
        r.bytes_copied,
        r.entries,
        r.store_dir.display()
    );
    match &r.previous_store {
        Some(prev) => println!("  previous store moved to {}", prev.display()),
        None => println!("  there was no previous store"),
    }
    if r.keys_restored {
        println!("  keys: sk and key restored from the backup");
    } else {
        println!(
            "  keys: not restored ({})",
            r.keys_note.as_deref().unwrap_or("not in backup")
        );
    }
    println!("  channels marked Stale: {}", r.stale_marked.len());
    for mark in &r.stale_marked {
        println!(
            "    {} (peer {}) was {}",
            mark.channel_id, mark.peer_pubkey, mark.previous
        );
    }
    println!(
        "  took: validate {}, copy {}, mark Stale + swap {}",
        bench::human_duration(r.validate_time),
        bench::human_duration(r.copy_time),
        bench::human_duration(r.mark_and_swap_time)
    );
}

fn run_node(base: BaseDir, config: Config) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        // Handlers first: a SIGTERM that arrives the moment we report ready must stop us
        // cleanly, not kill us with the default action.
        let shutdown = shutdown_signals()?;
        let options = dlp_node::node::StartOptions {
            chain: None,
            failpoints: failpoints_from_env()?,
            name: None,
        };
        let node = RunningNode::start_with(base.clone(), config, options).await?;
        println!(
            "dlp-node {} node {} backend {} base {}",
            env!("CARGO_PKG_VERSION"),
            node.node_pubkey_hex(),
            node.config().store.backend,
            base.root().display()
        );
        if node.keys_created() {
            println!(
                "created keys {} and {}",
                base.node_key().display(),
                base.wallet_key().display()
            );
        }
        if let Some(warning) = dlp_node::node::rpc_exposure_warning(node.config(), node.rpc_addr())
        {
            eprintln!("WARNING: {warning}");
        }
        println!("peer listening on {}", node.peer_address());
        println!("{}{}", dlp_node_api::READY_LINE_PREFIX, node.rpc_addr());
        // The core may stop on its own (fail-stop); serving on would then only answer
        // `node_info` and refuse everything else forever, so the process exits instead.
        let core_ended = tokio::select! {
            () = shutdown.wait() => None,
            fail = node.fail_stopped() => Some(fail),
        };
        let Some(fail) = core_ended else {
            node.stop().await;
            println!("dlp-node stopped");
            return Ok(());
        };
        let code = match &fail {
            Some(fail) => {
                tracing::error!(reason = %fail, "fail-stop: the node core stopped; exiting");
                eprintln!(
                    "dlp-node: fail-stop: {fail}; stopping the RPC server and exiting with code \
                     {} (restart once the store is writable)",
                    dlp_node::node::FAIL_STOP_EXIT_CODE
                );
                dlp_node::node::FAIL_STOP_EXIT_CODE
            }
            None => {
                tracing::error!("the node core ended unexpectedly; exiting");
                eprintln!(
                    "dlp-node: the node core ended unexpectedly; exiting with code {}",
                    dlp_node::node::CORE_ENDED_EXIT_CODE
                );
                dlp_node::node::CORE_ENDED_EXIT_CODE
            }
        };
        if tokio::time::timeout(CORE_ENDED_GRACE, node.stop())
            .await
            .is_err()
        {
            eprintln!("dlp-node: the RPC server did not stop within {CORE_ENDED_GRACE:?}");
        }
        Err(NodeEnded { code }.into())
    })
}

/// SIGTERM and SIGINT, registered before the node starts.
struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

fn shutdown_signals() -> Result<ShutdownSignals> {
    use tokio::signal::unix::{SignalKind, signal};
    Ok(ShutdownSignals {
        term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
    })
}

impl ShutdownSignals {
    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received, stopping"),
            _ = self.int.recv() => tracing::info!("SIGINT received, stopping"),
        }
    }
}

fn bench_payments(args: PaymentBenchArgs) -> Result<()> {
    let options = bench::payments::PaymentBenchOptions {
        backends: args.backends,
        payments: args.payments,
        starts: args.starts,
        work_dir: args
            .work_dir
            .unwrap_or_else(|| std::env::temp_dir().join("dlp-bench-payments")),
    };
    eprintln!(
        "bench-payments: scratch in {} (removed afterwards)",
        options.work_dir.display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let rows = runtime.block_on(bench::payments::run(&options, &mut |msg| {
        eprintln!("bench-payments: {msg}")
    }))?;
    let table = bench::payments::render_table(&rows);
    println!("{table}");
    if let Some(out) = args.out {
        std::fs::write(&out, &table).with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(())
}

fn bench_store(args: BenchArgs) -> Result<()> {
    let sizes = args
        .sizes
        .iter()
        .map(|s| bench::parse_size(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    if args.value_size == 0 {
        bail!("--value-size must be at least 1");
    }
    let options = bench::store::BenchOptions {
        sizes,
        backends: args.backends,
        work_dir: args.work_dir.unwrap_or_else(bench::store::default_work_dir),
        value_size: args.value_size,
        seed: args.seed,
        repeat: args.repeat,
    };
    eprintln!(
        "bench-store: scratch in {} (removed afterwards)",
        options.work_dir.display()
    );
    let rows = bench::store::run(&options, &mut |msg| eprintln!("bench-store: {msg}"))?;
    let table = bench::store::render_table(&rows);
    println!("{table}");
    if let Some(out) = args.out {
        std::fs::write(&out, &table).with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(())
}
