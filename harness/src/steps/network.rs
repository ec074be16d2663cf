//! The whole network at once: `wait_quiescent` (no message in flight) and `check_invariants`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ctx, Verb};
use crate::capability::Capability::TypedEvents;
use crate::capability::INVARIANT_CAPABILITIES;
use crate::checks;
use crate::error::HarnessError;
use crate::scenario::{Facts, VerbFacts};

/// Check the invariants now (they are always checked at the end).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckInvariants {}

impl VerbFacts for CheckInvariants {
    fn facts(&self) -> Facts<'_> {
        // The invariants judge a paused node by the events fetched before it froze.
        Facts::new([], INVARIANT_CAPABILITIES)
    }
}

impl Verb for CheckInvariants {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        checks::check_all(cx.net, cx.state.invariants).await
    }
}

/// Wait until every message sent between connected running nodes has been handled by
/// its receiver (no message in flight).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitQuiescent {}

impl VerbFacts for WaitQuiescent {
    fn facts(&self) -> Facts<'_> {
        // A paused node's directions count as frozen, not in flight.
        Facts::new([], &[TypedEvents])
    }
}

impl Verb for WaitQuiescent {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.wait_quiescent().await
    }
}
