//! The scenario verbs, one family per file: each verb's fields (what a file may write), its
//! facts and checks (the format's [`VerbFacts`]) and how it runs on the cluster ([`Verb`]),
//! together. The [`Step`] enum below has one line per verb; adding a verb is its struct and two
//! impls in a family file, one line here, and its row in `scenarios/README.md`.
//!
//! - `lifecycle.rs`: start, stop, restart, crash, pause, resume, expect_node_info
//! - `links.rs`: connect, disconnect, partition, heal, expect_unreachable
//! - `channels.rs`: open_channel, shutdown, expect_state, expect_balance, expect_channels
//! - `payments.rs`: pay, send_payment, expect_payment (and their route expectations)
//! - `backups.rs`: backup, backup_at, restore, wait_auto_backup, expect_backup_files
//! - `faults.rs`: damage_backup, crash_restore (faults in the backup and the restore)
//! - `holds.rs`: hold, wait_held, release, pin_order, unpin_order (step control)
//! - `audit.rs`: expect_audit, expect_silence, wait_reestablished, expect_resolution (the
//!   restored channel)
//! - `ledger.rs`: mine, mark_wallets, expect_wallet_change, expect_penalty
//! - `network.rs`: wait_quiescent, check_invariants (the whole network)
//!
//! The format (`scenario/`) is generic over the step type; [`Scenario`] and [`ScenarioFile`]
//! here are it with these verbs.

pub mod audit;
pub mod backups;
pub mod channels;
pub mod faults;
pub mod holds;
pub mod ledger;
pub mod lifecycle;
pub mod links;
pub mod network;
pub mod payments;
mod schema;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::checks;
use crate::cluster::Network;
use crate::error::HarnessError;
use crate::scenario::{self, Check, Facts, StepFormat, VerbFacts};

pub use audit::{AuditExpect, AuditPeer};
pub use backups::backup_store_file;
pub use channels::ShutdownExpect;
pub use payments::PayExpect;

/// A scenario with these verbs.
pub type Scenario = scenario::Scenario<Step>;
/// A scenario file with these verbs.
pub type ScenarioFile = scenario::ScenarioFile<Step>;

/// A verb: its facts and checks ([`VerbFacts`], what the format needs) and how it runs.
pub(crate) trait Verb: VerbFacts {
    /// Run the step on the network; `Err` is the step's failure, as the report shows it.
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError>;
}

/// The default `nth` of step control (`hold`, `backup_at`): the first time.
fn one() -> u64 {
    1
}

/// What a step runs against: the network, and what earlier steps left for later ones.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub(crate) net: &'a mut Network,
    pub(crate) state: &'a mut RunState,
}

/// What one step of a run leaves for a later one, and the run's invariant policy.
#[derive(Debug)]
pub struct RunState {
    /// There is one policy per run, the scenario's (`allow_penalties`): the `check_invariants`
    /// step and every check the session makes (at the end of a run, after each explorer step,
    /// in a sweep point's judge) use it.
    invariants: checks::Policy,
    /// Wallet balances at the last `mark_wallets`.
    marks: BTreeMap<String, u64>,
    /// Payments started by `send_payment`: name -> (payer, hash).
    payments: BTreeMap<String, (String, dlp_chain::Hash32)>,
}

impl RunState {
    /// The state before the first step of `file`.
    pub fn new(file: &ScenarioFile) -> Self {
        Self {
            invariants: checks::Policy {
                allow_penalties: file.allow_penalties,
            },
            marks: BTreeMap::new(),
            payments: BTreeMap::new(),
        }
    }

    /// The run's invariant policy.
    pub fn invariants(&self) -> checks::Policy {
        self.invariants
    }
}

/// The step enum, its dispatch to each verb, and the list of verbs, from one line per verb:
/// `"name" => Variant(family::Type)`.
macro_rules! steps {
    ($($name:literal => $variant:ident($ty:ty),)*) => {
        /// One step. Every step is a table with exactly one of these keys.
        #[derive(Debug, Clone, Deserialize, Serialize)]
        pub enum Step {
            $(#[serde(rename = $name)] $variant($ty),)*
        }

        /// Every verb, in the order of [`Step`].
        const VERBS: &[&str] = &[$($name),*];

        impl VerbFacts for Step {
            fn facts(&self) -> Facts<'_> {
                match self { $(Step::$variant(v) => v.facts(),)* }
            }
            fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
                match self { $(Step::$variant(v) => v.check(cx),)* }
            }
        }

        impl StepFormat for Step {
            fn verb(&self) -> &'static str {
                match self { $(Step::$variant(_) => $name,)* }
            }
            fn verbs() -> &'static [&'static str] {
                VERBS
            }
        }

        impl Step {
            /// Run this step on `net`, with what earlier steps of the run left in `state`.
            pub async fn run(
                &self,
                net: &mut Network,
                state: &mut RunState,
            ) -> Result<(), HarnessError> {
                let mut cx = Ctx { net, state };
                match self { $(Step::$variant(v) => v.run(&mut cx).await,)* }
            }
        }

        impl schemars::JsonSchema for Step {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                "Step".into()
            }
            fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schema::one_of(
                    "One step. Every step is a table with exactly one of these keys.",
                    vec![$(schema::variant::<$ty>(generator, $name),)*],
                )
            }
        }
    };
}

steps! {
    "start" => Start(lifecycle::Start),
    "stop" => Stop(lifecycle::Stop),
    "restart" => Restart(lifecycle::Restart),
    "crash" => Crash(lifecycle::Crash),
    "upgrade" => Upgrade(lifecycle::Upgrade),
    "connect" => Connect(links::Connect),
    "partition" => Partition(links::Partition),
    "heal" => Heal(links::Heal),
    "disconnect" => Disconnect(links::Disconnect),
    "pause" => Pause(lifecycle::Pause),
    "resume" => Resume(lifecycle::Resume),
    "expect_unreachable" => ExpectUnreachable(links::ExpectUnreachable),
    "open_channel" => OpenChannel(channels::OpenChannel),
    "pay" => Pay(payments::Pay),
    "send_payment" => SendPayment(payments::SendPayment),
    "expect_payment" => ExpectPayment(payments::ExpectPayment),
    "backup" => Backup(backups::Backup),
    "backup_at" => BackupAt(backups::BackupAt),
    "restore" => Restore(backups::Restore),
    "mine" => Mine(ledger::Mine),
    "hold" => Hold(holds::Hold),
    "wait_held" => WaitHeld(holds::WaitHeld),
    "release" => Release(holds::Release),
    "pin_order" => PinOrder(holds::PinOrder),
    "unpin_order" => UnpinOrder(holds::UnpinOrder),
    "shutdown" => Shutdown(channels::Shutdown),
    "expect_state" => ExpectState(channels::ExpectState),
    "expect_audit" => ExpectAudit(audit::ExpectAudit),
    "expect_silence" => ExpectSilence(audit::ExpectSilence),
    "wait_reestablished" => WaitReestablished(audit::WaitReestablished),
    "expect_resolution" => ExpectResolution(audit::ExpectResolution),
    "expect_balance" => ExpectBalance(channels::ExpectBalance),
    "mark_wallets" => MarkWallets(ledger::MarkWallets),
    "expect_wallet_change" => ExpectWalletChange(ledger::ExpectWalletChange),
    "check_invariants" => CheckInvariants(network::CheckInvariants),
    "wait_quiescent" => WaitQuiescent(network::WaitQuiescent),
    "expect_penalty" => ExpectPenalty(ledger::ExpectPenalty),
    "wait_auto_backup" => WaitAutoBackup(backups::WaitAutoBackup),
    "expect_backup_files" => ExpectBackupFiles(backups::ExpectBackupFiles),
    "expect_channels" => ExpectChannels(channels::ExpectChannels),
    "expect_node_info" => ExpectNodeInfo(lifecycle::ExpectNodeInfo),
    "damage_backup" => DamageBackup(faults::DamageBackup),
    "crash_restore" => CrashRestore(faults::CrashRestore),
}
