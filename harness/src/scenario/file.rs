//! The scenario format: the types a scenario file deserialises into (serde with
//! `deny_unknown_fields`, positions kept with `toml::Spanned`) and the step verbs; what a step
//! names is `step_names.rs`, the shapes a topology expands into are `topology.rs`. What a file
//! may say is decided here; whether what it says can run (names, bounds, preconditions) is
//! `validate.rs`; what a step does is `interpret.rs`.

use std::collections::BTreeMap;

use dlp_node_api::{AuditPolicy, MutualStale, OnAuditFailure, OnForceCloseRequest};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::schema::{
    AuditPolicyName, MutualStaleName, OnAuditFailureName, OnForceCloseRequestName,
};

pub use super::topology::{Shape, TopologyDecl, shape_pair_count, shape_pairs};

/// The file's shape.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// One paragraph: what the scenario proves.
    pub description: String,
    /// Backends to run on (default: both).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub backends: Option<Vec<Spanned<String>>>,
    /// The scenario expects penalty transactions on the ledger (default: none allowed).
    #[serde(default)]
    pub allow_penalties: bool,
    pub nodes: BTreeMap<String, NodeDecl>,
    /// Channels by shape (expanded into `channels` named `<from>-<to>`).
    #[serde(default)]
    #[schemars(with = "Option<TopologyDecl>")]
    pub topology: Option<Spanned<TopologyDecl>>,
    #[serde(default)]
    #[schemars(with = "Vec<ChannelDecl>")]
    pub channels: Vec<Spanned<ChannelDecl>>,
    #[serde(default)]
    #[schemars(with = "Vec<Step>")]
    pub steps: Vec<Spanned<Step>>,
    /// Makes the file a sweep workload (`dlp-harness sweep`): the node under test.
    #[serde(default)]
    #[schemars(with = "Option<SweepDecl>")]
    pub sweep: Option<Spanned<SweepDecl>>,
}

/// `[sweep]`: what `dlp-harness sweep` needs beyond the scenario prefix.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepDecl {
    /// The node whose every persisted step is backed up, restored and judged.
    pub node: String,
    /// Restore the node's peers too, each from a backup of its own latest state taken after
    /// the workload: both ends of every channel come back Stale (the mutual-restore case).
    #[serde(default)]
    pub restore_peers: bool,
}

/// `[nodes.<name>]`
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeDecl {
    #[serde(default)]
    #[schemars(with = "Option<AuditPolicyName>")]
    pub audit_policy: Option<AuditPolicy>,
    #[serde(default)]
    #[schemars(with = "Option<OnAuditFailureName>")]
    pub on_audit_failure: Option<OnAuditFailure>,
    /// The node backs itself up on its own schedule (dlp-node's `[backup] auto = true`): about
    /// a second after each start and after channel changes (see `wait_auto_backup`).
    #[serde(default)]
    pub auto_backup: bool,
    /// `"wait"` or `"reveal"`: what a Stale channel does when its peer is Stale too (unset:
    /// `wait` under the `fiber` policy, `reveal` under `strict`).
    #[serde(default)]
    #[schemars(with = "Option<MutualStaleName>")]
    pub mutual_stale: Option<MutualStale>,
    /// The node's forwarding fee in millionths of the forwarded amount (0 to 1,000,000; unset:
    /// 0): dlp-node's `[channel] fee_rate`, announced in its channel updates, so payers route
    /// around it when a cheaper route exists and pay it when not.
    #[serde(default)]
    pub fee_rate: Option<u64>,
    /// `"force_close"` or `"ignore"`: what a live channel does on the peer's
    /// `RequestForceClose` (unset: `force_close`).
    #[serde(default)]
    #[schemars(with = "Option<OnForceCloseRequestName>")]
    pub on_force_close_request: Option<OnForceCloseRequest>,
}

/// `[[channels]]`: opened (and confirmed) before the first step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelDecl {
    pub name: String,
    pub from: String,
    pub to: String,
    /// Funding in shannons (the opener funds it all).
    pub amount: u64,
}

/// Expected payment outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayExpect {
    #[default]
    Success,
    Failed,
    /// Either outcome (the explorer's payments: a Stale or offline route fails legitimately).
    Any,
}

/// Expected answer to a shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShutdownExpect {
    #[default]
    Ok,
    Refused,
    /// Either answer.
    Any,
}

/// Expected audit outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditExpect {
    Passed,
    Failed,
}

/// Where the peer's commitment numbers stand against the restored channel's, in an audit
/// (`expect_audit`'s `peer`): with the backup's `(L, R)` and the peer's `(PL, PR)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditPeer {
    /// `PL < R` or `PR < L`, and neither ahead: the peer lags the backup.
    Behind,
    /// `PL == R` and `PR == L`: the numbers agree.
    Level,
    /// `PL > R` or `PR > L`, and neither behind: the peer moved past the backup.
    Ahead,
}

impl AuditPeer {
    /// Where the peer stands, `None` when it is ahead in one number and behind in the other.
    pub fn of(local: u64, remote: u64, peer_local: u64, peer_remote: u64) -> Option<Self> {
        use std::cmp::Ordering::*;
        match (peer_local.cmp(&remote), peer_remote.cmp(&local)) {
            (Equal, Equal) => Some(AuditPeer::Level),
            (Less | Equal, Less | Equal) => Some(AuditPeer::Behind),
            (Greater | Equal, Greater | Equal) => Some(AuditPeer::Ahead),
            _ => None,
        }
    }
}

fn one() -> u64 {
    1
}

/// One step. Every step is a table with exactly one of these keys.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Start a stopped node.
    Start {
        node: String,
    },
    /// Stop a node cleanly.
    Stop {
        node: String,
    },
    /// Stop and start a node.
    Restart {
        node: String,
    },
    /// Kill a node (SIGKILL on the process driver).
    Crash {
        node: String,
    },
    /// `from` dials `to`.
    Connect {
        from: String,
        to: String,
    },
    /// Cut `a` and `b` apart: drop their connection and refuse `connect` between them until
    /// `heal`.
    Partition {
        a: String,
        b: String,
    },
    /// Undo a partition and reconnect (`a` dials).
    Heal {
        a: String,
        b: String,
    },
    Disconnect {
        from: String,
        to: String,
    },
    /// Freeze `node` where it stands (SIGSTOP on the process driver, `docker pause`): its
    /// sockets stay open, so its peers see a silent node, not a closed connection. Until
    /// `resume` no step may need its RPC or wait on its events (validated), quiescence counts
    /// its directions as frozen, and a `crash` kills it frozen. Needs a driver that can pause.
    Pause {
        node: String,
    },
    /// Thaw a paused node: it goes on from where it stood (the same run; a hold it was at
    /// still holds).
    Resume {
        node: String,
    },
    /// `from` dials `to` itself (its own `connect_peer`, past the cluster's partition
    /// bookkeeping); passes only if no connection between them is made within 3 s. The proof
    /// that a partition cut below the nodes holds against a node that redials: needs an earlier
    /// `partition` of the pair (not healed) and a driver that cuts partitions below the nodes.
    ExpectUnreachable {
        from: String,
        to: String,
    },
    /// Open a channel `from` -> `to` funded with `amount` by `from` (connecting them first if
    /// they are not), mine its funding and wait until both ends are ChannelReady; later steps
    /// name it `name`. The same as a `[[channels]]` entry, at any point of the steps.
    OpenChannel {
        name: String,
        from: String,
        to: String,
        amount: u64,
    },
    /// Pay an invoice of `to` from `from`, over the route the payer finds on its graph.
    Pay {
        from: String,
        to: String,
        amount: u64,
        #[serde(default)]
        expect: PayExpect,
        /// With `expect = "failed"`: text the failure reason must contain.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason_contains: Option<String>,
        /// The nodes the payment's last route went through, the payee last: `["bob", "carol"]`
        /// is through bob to carol (1 to 20 names; not with `expect = "any"`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        route: Option<Vec<String>>,
        /// How many routes the payer tried (1 to 8; not with `expect = "any"`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempts: Option<u32>,
    },
    /// Start a payment without waiting for it; remembered as `name` (see `expect_payment`).
    SendPayment {
        from: String,
        to: String,
        amount: u64,
        name: String,
    },
    /// Wait for a payment started with `send_payment` to end with `status`.
    ExpectPayment {
        name: String,
        status: PayExpect,
        /// The nodes the payment's last route went through, the payee last (1 to 20 names; not
        /// with `status = "any"`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        route: Option<Vec<String>>,
        /// How many routes the payer tried (1 to 8; not with `status = "any"`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempts: Option<u32>,
    },
    /// Hot backup of `node`, remembered as `name`.
    Backup {
        node: String,
        name: String,
    },
    /// Arm a backup of `node` taken by the node itself right after a protocol step
    /// (`sent:X` / `received:X`, optionally on `channel`, the `nth` time), remembered as `name`;
    /// the node does not stop there. A later `restore` waits until it is written.
    BackupAt {
        node: String,
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        #[serde(default = "one")]
        nth: u64,
        name: String,
    },
    /// Stop `node` if running, restore the named backup, start it again.
    Restore {
        node: String,
        backup: String,
    },
    Mine {
        blocks: u64,
    },
    /// Arm a hold after a protocol step (`sent:X` / `received:X`).
    Hold {
        node: String,
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        #[serde(default = "one")]
        nth: u64,
    },
    /// Wait until `node` is held.
    WaitHeld {
        node: String,
    },
    Release {
        node: String,
    },
    /// `shutdown_channel` from `node`.
    Shutdown {
        node: String,
        channel: String,
        #[serde(default)]
        force: bool,
        #[serde(default)]
        expect: ShutdownExpect,
    },
    /// Wait until `node` lists `channel` in `state` (`Stale`, `ChannelReady`, `Closed(0x1)`...).
    ExpectState {
        node: String,
        channel: String,
        state: String,
    },
    /// Wait for `node`'s audit of `channel` (in its current run) and check the outcome.
    ExpectAudit {
        node: String,
        channel: String,
        outcome: AuditExpect,
        /// Also where the peer's numbers stood against the backup's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<AuditPeer>,
    },
    /// `node` has sent nothing on `channel` in its current run, except after the peer's
    /// ReestablishChannel.
    ExpectSilence {
        node: String,
        channel: String,
    },
    /// Wait until `node` has heard the peer's ReestablishChannel on `channel` in its current run.
    WaitReestablished {
        node: String,
        channel: String,
    },
    /// Wait until `node`'s committed local balance on `channel` is `local`.
    ExpectBalance {
        node: String,
        channel: String,
        local: u64,
    },
    /// Remember every wallet balance on the ledger (for `expect_wallet_change`).
    MarkWallets {},
    /// Wait until `node`'s wallet changed by `amount` since `mark_wallets` (mines as needed is
    /// not implied: mine first).
    ExpectWalletChange {
        node: String,
        amount: i64,
    },
    /// Check the invariants now (they are always checked at the end).
    CheckInvariants {},
    /// Wait until every message sent between connected running nodes has been handled by
    /// its receiver (no message in flight).
    WaitQuiescent {},
    /// Wait until the ledger holds a penalty transaction for `channel` (someone broadcast a
    /// revoked commitment of it and was punished). Needs `allow_penalties = true`.
    ExpectPenalty {
        channel: String,
    },
    /// Wait until `node` has written an automatic backup (one it took on its own schedule: it
    /// needs `auto_backup = true`) in its current run, newer than any named before; remembered
    /// as `name`. With `within_ms`, it must come that soon after the step starts.
    WaitAutoBackup {
        node: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within_ms: Option<u64>,
    },
    /// The named backup of `node` holds `files` (paths relative to the backup's directory; one
    /// ending in `/` is a directory), and with `store = true` the store of the run's backend
    /// (`db/CURRENT` on RocksDB, `data.sqlite` on SQLite).
    ExpectBackupFiles {
        node: String,
        backup: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        store: bool,
    },
    /// Wait until `node` lists exactly `count` channels that are not closed (only those with
    /// `peer`, if given), each in `state` if given (as `expect_state` compares it).
    ExpectChannels {
        node: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        count: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<String>,
    },
    /// `node_info` of `node` answers, with the node's own public key.
    ExpectNodeInfo {
        node: String,
    },
}
