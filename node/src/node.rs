//! A running node: lock, layout, keys, store and RPC server, with a clean stop.
//!
//! [`RunningNode::start`] is what `dlp-node -d <base>` runs, and what the harness's in-process
//! driver will call directly. Start-up order matters: the lock comes first, so two nodes can
//! never share a base directory and a restore can never run under a live node.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;

use jsonrpsee::server::{Server, ServerHandle};

use crate::backup::{BackupError, BackupInfo, BackupNamer, create_backup};
use crate::channel_record::CHANNEL_RECORD_PREFIX;
use crate::config::Config;
use crate::keys::{KeyError, NodeKeys};
use crate::layout::BaseDir;
use crate::lock::{BaseDirLock, LockError};
use crate::store::{Store, StoreError, open_store};

/// Why a node could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot create {}: {source}", path.display())]
    Layout {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serve RPC on {addr}: {source}")]
    Rpc {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Everything the RPC handlers need.
#[derive(Debug)]
pub struct NodeContext {
    base: BaseDir,
    config: Config,
    keys: NodeKeys,
    store: Arc<dyn Store>,
    namer: BackupNamer,
}

impl NodeContext {
    /// The node's config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The node's keys.
    pub fn keys(&self) -> &NodeKeys {
        &self.keys
    }

    /// The node's store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The node's base directory.
    pub fn base(&self) -> &BaseDir {
        &self.base
    }

    /// Take a hot backup into `<base>/fiber/backups/<unix_ms>/`.
    pub fn backup(&self) -> Result<BackupInfo, BackupError> {
        let target = self.namer.next_dir(&self.base);
        create_backup(self.store.as_ref(), &self.base, &self.keys, &target)
    }

    /// Number of channel records in the store.
    pub fn channel_count(&self) -> Result<u64, StoreError> {
        let mut count = 0;
        self.store
            .scan_prefix(&[CHANNEL_RECORD_PREFIX], &mut |_, _| {
                count += 1;
                ControlFlow::Continue(())
            })?;
        Ok(count)
    }
}

/// A started node. Dropping it without [`stop`](Self::stop) still releases everything, but
/// without waiting for in-flight RPC calls.
#[derive(Debug)]
pub struct RunningNode {
    ctx: Arc<NodeContext>,
    rpc: ServerHandle,
    rpc_addr: SocketAddr,
    keys_created: bool,
    _lock: BaseDirLock,
}

impl RunningNode {
    /// Lock `base`, create its layout and keys on first start, open the store, serve RPC.
    pub async fn start(base: BaseDir, config: Config) -> Result<Self, NodeError> {
        let lock = BaseDirLock::acquire(&base)?;
        for dir in [base.fiber_dir(), base.ckb_dir()] {
            std::fs::create_dir_all(&dir).map_err(|source| NodeError::Layout {
                path: dir.clone(),
                source,
            })?;
        }
        let (keys, keys_created) = NodeKeys::load_or_create(&base)?;
        let store: Arc<dyn Store> = Arc::from(open_store(config.store.backend, &base.store_dir())?);
        let addr = config.rpc.listening_addr;
        let ctx = Arc::new(NodeContext {
            base,
            config,
            keys,
            store,
            namer: BackupNamer::default(),
        });
        let server = Server::builder()
            .build(addr)
            .await
            .map_err(|source| NodeError::Rpc { addr, source })?;
        let rpc_addr = server
            .local_addr()
            .map_err(|source| NodeError::Rpc { addr, source })?;
        let rpc = server.start(crate::rpc::build_module(ctx.clone()));
        tracing::info!(
            pubkey = %ctx.keys.node_pubkey_hex(),
            backend = %ctx.store.backend(),
            %rpc_addr,
            "node started"
        );
        Ok(Self {
            ctx,
            rpc,
            rpc_addr,
            keys_created,
            _lock: lock,
        })
    }

    /// The bound RPC address (useful with port 0).
    pub fn rpc_addr(&self) -> SocketAddr {
        self.rpc_addr
    }

    /// The node's shared context (store, keys, config).
    pub fn context(&self) -> &Arc<NodeContext> {
        &self.ctx
    }

    /// True when this start created the key files.
    pub fn keys_created(&self) -> bool {
        self.keys_created
    }

    /// Stop serving RPC, wait for in-flight calls, close the store, release the lock.
    pub async fn stop(self) {
        if self.rpc.stop().is_ok() {
            self.rpc.stopped().await;
        }
        tracing::info!("node stopped");
    }
}
