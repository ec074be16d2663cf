//! A running node: lock, layout, keys, store and RPC server, with a clean stop.
//!
//! [`RunningNode::start`] is what `dlp-node -d <base>` runs, and what the harness's in-process
//! driver will call directly. Start-up order matters: the lock comes first, so two nodes can
//! never share a base directory and a restore can never run under a live node.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;

use dlp_chain::{ChainClient, InProcessChain, Pubkey, RemoteChain};
use jsonrpsee::server::ServerHandle;

use crate::backup::{BackupError, BackupInfo, BackupNamer, DigestCache, create_backup_with};
use crate::channel_record::CHANNEL_RECORD_PREFIX;
use crate::config::Config;
use crate::core::{Core, CoreHandle};
use crate::events::{EventBus, EventKind};
use crate::keys::{KeyError, NodeKeys};
use crate::layout::BaseDir;
use crate::lock::{BaseDirLock, LockError};
use crate::steps::StepControl;
use crate::store::{Store, StoreError, open_store};
use crate::transport::Identity;

/// Why a node could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Recovery(#[from] crate::restore::intent::RecoveryError),
    #[error("cannot create {}: {source}", path.display())]
    Layout {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "rpc.listening_addr = {addr} is not a loopback address; set rpc.allow_non_loopback = \
         true to expose the unauthenticated RPC"
    )]
    NonLoopbackRpc { addr: SocketAddr },
    #[error("cannot serve RPC on {addr}: {source}")]
    Rpc {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen for peers on {addr}: {source}")]
    PeerListen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Chain(#[from] dlp_chain::remote::BadRpcUrl),
    #[error("cannot open the event file: {0}")]
    Events(#[source] std::io::Error),
    #[error(transparent)]
    Core(#[from] crate::core::CoreError),
    #[error("{}: {source}", store.display())]
    Migrate {
        store: std::path::PathBuf,
        #[source]
        source: crate::migrate::MigrateError,
    },
}

/// Everything [`RunningNode::start_with`] accepts besides the base directory and config.
#[derive(Debug, Default)]
pub struct StartOptions {
    /// A ledger handle; `None` means `chain.rpc_url` (or a private in-memory ledger).
    pub chain: Option<Arc<dyn ChainClient>>,
    /// Injected failures (tests, `DLP_NODE_FAILPOINTS`).
    pub failpoints: crate::failpoint::Failpoints,
    /// A name for the node's log lines (the harness passes `alice`, `bob`, ...).
    pub name: Option<String>,
}

/// The protocol side of a running node: the core, its events and step control, the peer socket.
#[derive(Debug, Clone)]
pub(crate) struct Protocol {
    pub(crate) core: CoreHandle,
    pub(crate) events: Arc<EventBus>,
    pub(crate) steps: Arc<StepControl>,
    pub(crate) peer_addr: SocketAddr,
    pub(crate) identity: Identity,
}

impl Protocol {
    /// The address peers dial: `/ip4/<ip>/tcp/<port>/p2p/<pubkey hex>`.
    pub(crate) fn address(&self) -> String {
        format_peer_address(self.peer_addr, &self.identity.pubkey)
    }
}

/// Exit code of `dlp-node` after a fail-stop: a store write failed (a full disk, say), so the
/// core stopped processing; the process exits so that a supervisor notices and restarts it
/// once the store is writable (sysexits' `EX_IOERR`).
pub const FAIL_STOP_EXIT_CODE: u8 = 74;
/// Exit code of `dlp-node` when the core ended without a fail-stop or a stop request (a bug,
/// such as a panic in the core; sysexits' `EX_SOFTWARE`).
pub const CORE_ENDED_EXIT_CODE: u8 = 70;

/// The warning for an RPC server bound beyond loopback (the RPC has no authentication), naming
/// the address and the enabled modules, `admin` and `dev` loudest; `None` on loopback.
pub fn rpc_exposure_warning(config: &Config, bound: SocketAddr) -> Option<String> {
    use crate::config::RpcModule;
    if bound.ip().is_loopback() {
        return None;
    }
    let names = |pred: fn(&RpcModule) -> bool| {
        config
            .rpc
            .enabled_modules
            .iter()
            .filter(|m| pred(m))
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    let mut text = format!(
        "the JSON-RPC server listens on {bound}, beyond loopback, without authentication: \
         anyone who can reach it can call the modules [{}]",
        names(|_| true).join(", ")
    );
    let dangerous = names(|m| matches!(m, RpcModule::Admin | RpcModule::Dev));
    if !dangerous.is_empty() {
        text.push_str(&format!(
            "; DANGEROUS modules enabled: {} (admin writes backups on demand; dev holds the \
             node at protocol steps, takes backups there and reads every event)",
            dangerous.join(", ")
        ));
    }
    Some(text)
}

pub(crate) use dlp_node_api::address::{format_peer_address, parse_peer_address};

pub use crate::core::{CoreError, FailStop};

/// The node's storage side: base directory, config, keys, store, backups and the event bus they
/// announce on. Built first, before the core (which needs it) and the [`Protocol`] side (which
/// needs the core), so it never points back at either: nothing in it is ever half-initialised.
#[derive(Debug)]
pub(crate) struct NodeContext {
    base: BaseDir,
    config: Config,
    keys: NodeKeys,
    store: Arc<dyn Store>,
    events: Arc<EventBus>,
    namer: BackupNamer,
    backup_lock: std::sync::Mutex<()>,
    digests: DigestCache,
}

impl NodeContext {
    /// The node's config.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The node's keys.
    pub(crate) fn keys(&self) -> &NodeKeys {
        &self.keys
    }

    /// The node's store.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The node's base directory.
    pub(crate) fn base(&self) -> &BaseDir {
        &self.base
    }

    /// The node's events (the same bus as [`Protocol::events`]).
    pub fn events(&self) -> &Arc<EventBus> {
        &self.events
    }

    /// Take a hot backup into `<base>/fiber/backups/<unix_ms>/`.
    pub(crate) fn backup(&self) -> Result<BackupInfo, BackupError> {
        self.backup_tagged(None, false)
    }

    /// A backup taken by step control at `step` (its `BackupWritten` names the step).
    pub(crate) fn backup_at_step(&self, step: &str) -> Result<BackupInfo, BackupError> {
        self.backup_tagged(Some(step.to_string()), false)
    }

    /// A backup the node's schedule took (`backup.auto`; its `BackupWritten` says so).
    pub(crate) fn backup_automatic(&self) -> Result<BackupInfo, BackupError> {
        self.backup_tagged(None, true)
    }

    fn backup_tagged(
        &self,
        step: Option<String>,
        automatic: bool,
    ) -> Result<BackupInfo, BackupError> {
        // One backup at a time (RPC, automatic, step control): retention never sees another
        // backup half-written, and names stay in the order backups finish.
        let _one_at_a_time = self.backup_lock.lock().unwrap_or_else(|p| p.into_inner());
        let target = self.namer.next_dir(&self.base);
        let info = create_backup_with(
            self.store.as_ref(),
            &self.base,
            &self.keys,
            &target,
            Some(&self.digests),
        )?;
        // The backup is written; failing to prune old ones must not turn it into a failure.
        if let Err(e) = crate::backup::prune_backups(&self.base, self.config.backup.keep) {
            tracing::error!(error = %e, "could not remove old backups (backup.keep)");
        }
        self.events.publish(EventKind::BackupWritten {
            dir: info.dir.display().to_string(),
            step,
            automatic,
        });
        Ok(info)
    }

    /// Number of channel records in the store.
    pub(crate) fn channel_count(&self) -> Result<u64, StoreError> {
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
    protocol: Arc<Protocol>,
    rpc: ServerHandle,
    rpc_addr: SocketAddr,
    keys_created: bool,
    core_task: tokio::task::JoinHandle<()>,
    listener_task: tokio::task::JoinHandle<()>,
    auto_backup: Option<crate::auto_backup::AutoBackup>,
    _lock: BaseDirLock,
}

impl RunningNode {
    /// Lock `base`, create its layout and keys on first start, open the store, serve RPC.
    pub async fn start(base: BaseDir, config: Config) -> Result<Self, NodeError> {
        Self::start_with_chain(base, config, None).await
    }

    /// Like [`start`](Self::start), with a chain handle instead of `chain.rpc_url` (the
    /// in-process driver shares one ledger between nodes this way). With neither, the node
    /// uses a private in-memory ledger, good for storage work only.
    pub async fn start_with_chain(
        base: BaseDir,
        config: Config,
        chain: Option<Arc<dyn ChainClient>>,
    ) -> Result<Self, NodeError> {
        Self::start_with(
            base,
            config,
            StartOptions {
                chain,
                failpoints: crate::failpoint::Failpoints::none(),
                name: None,
            },
        )
        .await
    }

    /// The general start: a chain handle (see [`start_with_chain`](Self::start_with_chain)),
    /// failpoints (`core.persist`: the core's store write fails, the node fail-stops) and a
    /// name that every log line of the node's tasks carries (`node{name=bob}`), so the logs of
    /// several in-process nodes stay apart.
    pub async fn start_with(
        base: BaseDir,
        config: Config,
        options: StartOptions,
    ) -> Result<Self, NodeError> {
        let span = match &options.name {
            Some(name) => tracing::info_span!("node", name = %name),
            None => tracing::Span::none(),
        };
        tracing::Instrument::instrument(Self::start_inner(base, config, options), span).await
    }

    async fn start_inner(
        base: BaseDir,
        config: Config,
        options: StartOptions,
    ) -> Result<Self, NodeError> {
        let StartOptions {
            chain, failpoints, ..
        } = options;
        // The config file refuses this too; a config built in code must not bypass it.
        let rpc = &config.rpc;
        if !rpc.listening_addr.ip().is_loopback() && !rpc.allow_non_loopback {
            return Err(NodeError::NonLoopbackRpc {
                addr: rpc.listening_addr,
            });
        }
        let lock = BaseDirLock::acquire(&base)?;
        for dir in [base.fiber_dir(), base.ckb_dir()] {
            std::fs::create_dir_all(&dir).map_err(|source| NodeError::Layout {
                path: dir.clone(),
                source,
            })?;
        }
        // A restore killed after it was decided is finished first; a store that is missing
        // while earlier stores lie next to it is lost, not new: refuse to start empty.
        if let Some(done) = crate::restore::complete_interrupted(&base)? {
            tracing::warn!(
                backup = %done.intent.backup_dir.display(),
                "completed an interrupted restore before starting"
            );
        }
        crate::restore::check_store_present(&base)?;
        let (keys, keys_created) = NodeKeys::load_or_create(&base)?;
        let store: Arc<dyn Store> = Arc::from(open_store(config.store.backend, &base.store_dir())?);
        // Records an earlier build wrote are brought forward before anything reads them; a
        // store of a newer build is refused here (see `crate::migrate`).
        let own = Pubkey::from(keys.node_pubkey());
        match crate::migrate::bring_forward(store.as_ref(), &own) {
            Ok(Some(done)) => tracing::warn!(
                from = done.from,
                to = crate::migrate::STORE_FORMAT,
                channels = done.channels,
                payments = done.payments,
                "migrated the store's records written by an earlier dlp-node"
            ),
            Ok(None) => {}
            Err(source) => {
                return Err(NodeError::Migrate {
                    store: base.store_dir(),
                    source,
                });
            }
        }
        let addr = config.rpc.listening_addr;
        let chain: Arc<dyn ChainClient> = match (chain, &config.chain.rpc_url) {
            (Some(chain), _) => chain,
            (None, Some(url)) => Arc::new(RemoteChain::from_url(url)?),
            (None, None) => {
                tracing::warn!(
                    "no chain.rpc_url configured: using a private in-memory ledger; channels \
                     with other nodes cannot be funded"
                );
                Arc::new(InProcessChain::new())
            }
        };
        let events = Arc::new(
            EventBus::new(Some(base.root().join(dlp_node_api::EVENTS_FILE_NAME)))
                .map_err(NodeError::Events)?,
        );
        // In dependency order: the storage side, the core on it, then the protocol side.
        let ctx = Arc::new(NodeContext {
            base,
            config,
            keys,
            store,
            events: events.clone(),
            namer: BackupNamer::default(),
            backup_lock: std::sync::Mutex::new(()),
            digests: DigestCache::default(),
        });
        let steps = Arc::new(StepControl::default());
        let identity = Identity {
            secret: *ctx.keys.node_secret(),
            pubkey: Pubkey::from(ctx.keys.node_pubkey()),
        };
        let peer_listen = ctx.config.fiber.listening_addr;
        let listener = tokio::net::TcpListener::bind(peer_listen)
            .await
            .map_err(|source| NodeError::PeerListen {
                addr: peer_listen,
                source,
            })?;
        let peer_addr = listener
            .local_addr()
            .map_err(|source| NodeError::PeerListen {
                addr: peer_listen,
                source,
            })?;
        let (core, core_task) = Core::spawn(
            ctx.clone(),
            chain.clone(),
            steps.clone(),
            Arc::new(failpoints),
        )?;
        let listener_task =
            crate::transport::spawn_listener(listener, identity.clone(), core.transport_sender());
        let protocol = Arc::new(Protocol {
            core,
            events,
            steps,
            peer_addr,
            identity,
        });
        let (rpc_addr, rpc) =
            crate::rpc::limits::start_server(addr, crate::rpc::build_module(&ctx, &protocol))
                .await
                .map_err(|source| NodeError::Rpc { addr, source })?;
        if let Some(warning) = rpc_exposure_warning(&ctx.config, rpc_addr) {
            tracing::warn!("{warning}");
        }
        let auto_backup = ctx
            .config
            .backup
            .auto
            .then(|| crate::auto_backup::spawn(ctx.clone()));
        tracing::info!(
            pubkey = %ctx.keys.node_pubkey_hex(),
            backend = %ctx.store.backend(),
            %rpc_addr,
            %peer_addr,
            "node started"
        );
        Ok(Self {
            ctx,
            protocol,
            rpc,
            rpc_addr,
            keys_created,
            core_task,
            listener_task,
            auto_backup,
            _lock: lock,
        })
    }

    /// The bound RPC address (useful with port 0).
    pub fn rpc_addr(&self) -> SocketAddr {
        self.rpc_addr
    }

    /// The node's shared context (store, keys, config).
    #[cfg(test)]
    pub(crate) fn context(&self) -> &Arc<NodeContext> {
        &self.ctx
    }

    /// True when this start created the key files.
    pub fn keys_created(&self) -> bool {
        self.keys_created
    }

    /// The node's public key, compressed, hex (what `node_info` says).
    pub fn node_pubkey_hex(&self) -> String {
        self.ctx.keys().node_pubkey_hex()
    }

    /// The config it runs with.
    pub fn config(&self) -> &Config {
        self.ctx.config()
    }

    /// The address peers dial: `/ip4/<ip>/tcp/<port>/p2p/<pubkey hex>`.
    pub fn peer_address(&self) -> String {
        self.protocol().address()
    }

    /// Stop serving RPC, wait for in-flight calls, close the store, release the lock.
    pub async fn stop(self) {
        self.listener_task.abort();
        if let Some(auto_backup) = self.auto_backup {
            auto_backup.stop().await;
        }
        // An RPC call whose command waits for its turn in a pinned order must not hold up the
        // wait for in-flight calls below.
        self.protocol.core.unpin();
        if self.rpc.stop().is_ok() {
            self.rpc.stopped().await;
        }
        let protocol = &self.protocol;
        // A held core must not block the stop.
        protocol.steps.disarm_all();
        protocol.steps.release();
        protocol.core.stop();
        let _ = self.core_task.await;
        tracing::info!("node stopped");
    }

    /// Stop abruptly, like `kill -9` as far as one process can: the core is cancelled where it
    /// stands (even while held at a step) and processes nothing more; nothing is flushed that
    /// was not already written. Sockets close; the store closes when the last handle drops.
    pub async fn crash(self) {
        self.listener_task.abort();
        self.core_task.abort();
        let _ = self.core_task.await;
        if let Some(auto_backup) = self.auto_backup {
            auto_backup.stop().await;
        }
        if self.rpc.stop().is_ok() {
            self.rpc.stopped().await;
        }
        tracing::info!("node crashed (simulated)");
    }

    /// The protocol side: core handle, events, step control, peer address.
    pub(crate) fn protocol(&self) -> &Protocol {
        &self.protocol
    }

    /// Resolves when the core stops on its own: `Some` after a fail-stop (a store write
    /// failed; the core processes nothing more and the node only answers `node_info`), `None`
    /// when the core ended any other way. Whoever runs the node should then stop it and
    /// restart it once the store is writable; the `dlp-node` binary exits with
    /// [`FAIL_STOP_EXIT_CODE`].
    pub async fn fail_stopped(&self) -> Option<FailStop> {
        self.protocol().core.fail_stopped().await
    }
}
