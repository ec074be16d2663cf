//! `dlp-chain serve --listen 127.0.0.1:<port> [--block-interval-ms N]`: the ledger as a process.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use dlp_chain::InProcessChain;

#[derive(Debug, Parser)]
#[command(
    name = "dlp-chain",
    version,
    about = "A small validating ledger for dlp-node"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the ledger over JSON-RPC until SIGTERM or SIGINT.
    Serve {
        /// Address to listen on (loopback unless --allow-non-loopback; port 0 picks a free
        /// port).
        #[arg(long, default_value = "127.0.0.1:8114")]
        listen: SocketAddr,
        /// Allow --listen beyond loopback: only for a ledger on a private network of its own
        /// (the harness's containers). The RPC has no authentication and a faucet.
        #[arg(long)]
        allow_non_loopback: bool,
        /// Mine a block every N milliseconds (default: only on `mine`).
        #[arg(long)]
        block_interval_ms: Option<u64>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DLP_CHAIN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            listen,
            allow_non_loopback,
            block_interval_ms,
        } => {
            if !listen.ip().is_loopback() && !allow_non_loopback {
                bail!(
                    "--listen {listen}: dlp-chain serves on loopback addresses only, unless \
                     --allow-non-loopback (a private network of its own)"
                );
            }
            if !listen.ip().is_loopback() {
                tracing::warn!(%listen, "serving the ledger beyond loopback: its RPC has no authentication and a faucet");
            }
            let chain = InProcessChain::new();
            let miner = match block_interval_ms {
                Some(0) => bail!("--block-interval-ms must be positive"),
                Some(ms) => Some(chain.spawn_auto_miner(Duration::from_millis(ms))),
                None => None,
            };
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .context("installing the SIGTERM handler")?;
            let (addr, handle) = dlp_chain::server::serve(chain, listen)
                .await
                .with_context(|| format!("listening on {listen}"))?;
            println!("dlp-chain listening on {addr}");
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            if let Some(miner) = miner {
                miner.abort();
            }
            let _ = handle.stop();
            handle.stopped().await;
            Ok(())
        }
    }
}
