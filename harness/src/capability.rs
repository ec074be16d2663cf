//! The drivers there are and what each offers, as plain names: a leaf every layer may use. The
//! scenario format checks a file against a driver's capabilities before anything starts, and the
//! sweep and the explorer choose a driver by name, without either knowing how a driver runs a
//! node (that is `driver/`, which builds one from its [`DriverKind`]).

/// Something a scenario may need from the nodes beyond their plain RPC. A driver declares what
/// it offers; `check` and `run` refuse a scenario that needs more, naming the step (file:line)
/// and the missing capability, instead of hanging on a wait that can never end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Typed node events (`dev_events`): every wait, the timeline and every invariant.
    TypedEvents,
    /// Step control (`dev_hold`): `hold`, `wait_held`, `release`, `backup_at`.
    StepControl,
    /// The dlp-chain ledger as the oracle: penalties, wallet balances, conservation.
    DlpChainLedger,
    /// Freezing a node where it stands and thawing it (`pause`, `resume`): its peers see a
    /// silent node, not a closed socket (SIGSTOP/SIGCONT, `docker pause`). A task in the
    /// harness's own process cannot be frozen.
    Pause,
    /// Partitions cut below the nodes (`expect_unreachable`): a node that dials its partitioned
    /// peer itself cannot reach it. Without it a partition is the cluster's connection-level cut,
    /// which holds only as long as nobody redials.
    PartitionBelowNodes,
    /// Killing a node's offline restore at the n-th call of a syscall, below the node (`strace
    /// --inject ...:signal=KILL` on the restore process): `crash_restore`. A restore inside the
    /// harness's own process cannot be killed alone.
    KillRestore,
    /// A size limit on a node's backup directory below the node (a size-limited tmpfs mounted
    /// there), so a backup meets a real full disk: the node key `backup_space_kb`.
    BackupSpaceLimit,
    /// Running a named earlier build of the node (`versions.toml`): the node key `version` and
    /// the `upgrade` verb. A task in the harness's own process is always this build.
    NodeVersions,
    /// Running a build whose peer socket listens on loopback only (the pre-routing dialect of
    /// `versions.toml`): its peers must reach it on the host's loopback, which nodes on a
    /// network of their own (containers) cannot.
    LoopbackOnlyBuilds,
}

impl Capability {
    /// Every capability, in order.
    pub const ALL: [Capability; 9] = [
        Capability::TypedEvents,
        Capability::StepControl,
        Capability::DlpChainLedger,
        Capability::Pause,
        Capability::PartitionBelowNodes,
        Capability::KillRestore,
        Capability::BackupSpaceLimit,
        Capability::NodeVersions,
        Capability::LoopbackOnlyBuilds,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Capability::TypedEvents => "typed events",
            Capability::StepControl => "step control",
            Capability::DlpChainLedger => "the dlp-chain ledger",
            Capability::Pause => "pausing a node",
            Capability::PartitionBelowNodes => "partitions below the nodes",
            Capability::KillRestore => "killing a restore at a syscall",
            Capability::BackupSpaceLimit => "a size limit on the backup directory",
            Capability::NodeVersions => "running earlier builds of the node",
            Capability::LoopbackOnlyBuilds => "running builds that listen on loopback only",
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the invariants need: they are checked at the end of every scenario (passive silence,
/// the audit rule and bug reports read typed events; no penalty and conservation read the
/// dlp-chain ledger), so every scenario needs these.
pub const INVARIANT_CAPABILITIES: &[Capability] =
    &[Capability::TypedEvents, Capability::DlpChainLedger];

/// Which driver: the one list of drivers (the CLI's `--driver` values and `DLP_HARNESS_DRIVER`
/// come from it). `driver::create` builds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum DriverKind {
    /// Nodes as tasks in the harness process (default: fastest).
    #[value(name = "in-process")]
    InProcess,
    /// Every node a `dlp-node` process, the chain `dlp-chain serve`.
    Process,
    /// Every node and the chain in a container of a locally built image, on a Docker network
    /// of the run's own (testcontainers).
    Container,
}

impl DriverKind {
    pub fn name(self) -> &'static str {
        match self {
            DriverKind::InProcess => "in-process",
            DriverKind::Process => "process",
            DriverKind::Container => "container",
        }
    }

    /// What nodes on this driver offer. All run dlp-node against dlp-chain; a process can be
    /// frozen, a task cannot; only containers have a network path to cut below the nodes
    /// (loopback has none); a restore can be killed alone only when it is a process of its own.
    pub fn capabilities(self) -> &'static [Capability] {
        use Capability::*;
        match self {
            DriverKind::InProcess => &[TypedEvents, StepControl, DlpChainLedger],
            DriverKind::Process => &[
                TypedEvents,
                StepControl,
                DlpChainLedger,
                Pause,
                KillRestore,
                NodeVersions,
                LoopbackOnlyBuilds,
            ],
            DriverKind::Container => &[
                TypedEvents,
                StepControl,
                DlpChainLedger,
                Pause,
                PartitionBelowNodes,
                KillRestore,
                BackupSpaceLimit,
                NodeVersions,
            ],
        }
    }
}
