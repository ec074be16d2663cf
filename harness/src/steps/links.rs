//! Connections between nodes: `connect`, `disconnect`, `partition`, `heal` and
//! `expect_unreachable` (the proof that a partition holds against a node that redials).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ctx, Verb};
use crate::capability::Capability::{PartitionBelowNodes, TypedEvents};
use crate::error::HarnessError;
use crate::limits::UNREACHABLE_WITHIN;
use crate::scenario::{Check, Facts, NodeState, VerbFacts};

/// `from` dials `to`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Connect {
    pub from: String,
    pub to: String,
}

impl VerbFacts for Connect {
    fn facts(&self) -> Facts<'_> {
        let (from, to) = (self.from.as_str(), self.to.as_str());
        Facts::new([from, to], &[TypedEvents]).answering([from, to])
    }
}

impl Verb for Connect {
    /// Ends when the pair's channels have finished reestablishing (`cluster::reestablished`),
    /// so the next step finds them usable.
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.connect_usable(&self.from, &self.to).await
    }
}

/// Cut `a` and `b` apart: drop their connection and refuse `connect` between them until
/// `heal`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    pub a: String,
    pub b: String,
}

impl VerbFacts for Partition {
    fn facts(&self) -> Facts<'_> {
        // Either side may drop the connection: one of them answering is enough (checked below).
        Facts::new([self.a.as_str(), self.b.as_str()], &[])
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        let (a, b) = (&self.a, &self.b);
        if cx.liveness().paused(a) && cx.liveness().paused(b) {
            return Err(format!(
                "partition: {a} and {b} are both paused; the connection is dropped by a side \
                 that answers: resume one of them first"
            ));
        }
        cx.liveness_mut().partition(a, b);
        Ok(())
    }
}

impl Verb for Partition {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.partition(&self.a, &self.b).await
    }
}

/// Undo a partition and reconnect (`a` dials).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Heal {
    pub a: String,
    pub b: String,
}

impl VerbFacts for Heal {
    fn facts(&self) -> Facts<'_> {
        let (a, b) = (self.a.as_str(), self.b.as_str());
        Facts::new([a, b], &[TypedEvents]).answering([a, b])
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        cx.liveness_mut().heal(&self.a, &self.b);
        Ok(())
    }
}

impl Verb for Heal {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.heal(&self.a, &self.b).await
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Disconnect {
    pub from: String,
    pub to: String,
}

impl VerbFacts for Disconnect {
    fn facts(&self) -> Facts<'_> {
        // Only `from` acts: a paused `to` just sees its silent connection dropped.
        Facts::new([self.from.as_str(), self.to.as_str()], &[]).answering([self.from.as_str()])
    }
}

impl Verb for Disconnect {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.disconnect(&self.from, &self.to).await
    }
}

/// `from` dials `to` itself (its own `connect_peer`, past the cluster's partition
/// bookkeeping); passes only if no connection between them is made within 3 s. The proof
/// that a partition cut below the nodes holds against a node that redials: needs an earlier
/// `partition` of the pair (not healed) and a driver that cuts partitions below the nodes.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectUnreachable {
    pub from: String,
    pub to: String,
}

impl VerbFacts for ExpectUnreachable {
    fn facts(&self) -> Facts<'_> {
        // A connection-level cut does not stop a node that dials by itself, so without a cut below
        // the nodes the step could only fail; it watches both nodes' events.
        let (from, to) = (self.from.as_str(), self.to.as_str());
        Facts::new([from, to], &[PartitionBelowNodes, TypedEvents])
            .answering([from, to])
            .paused_hint(
                "a frozen node never finishes a handshake, so it would look unreachable without \
                 any partition",
            )
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        let (from, to) = (&self.from, &self.to);
        for node in [from, to] {
            if let NodeState::Stopped { line: since } = cx.liveness().state(node) {
                return Err(format!(
                    "expect_unreachable: {node} is not running here (stopped at line {since}); \
                     the step dials from a running node to a running node"
                ));
            }
        }
        if !cx.liveness().partitioned(from, to) {
            return Err(format!(
                "expect_unreachable: {from} and {to} are not partitioned here (it needs an \
                 earlier partition of the pair, not healed; otherwise the dial succeeds)"
            ));
        }
        Ok(())
    }
}

impl Verb for ExpectUnreachable {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        let (from, to) = (&self.from, &self.to);
        if cx.net.try_dial(from, to, UNREACHABLE_WITHIN).await? {
            Err(HarnessError::Expectation(format!(
                "{from} reached {to} across their partition (it dialled and a connection was \
                 made within {} s): the partition does not hold against a node that redials",
                UNREACHABLE_WITHIN.as_secs()
            )))
        } else {
            Ok(())
        }
    }
}
