//! Step control's request: hold a node (or take a backup) right after a named protocol step.
//! What the `dev_hold` RPC takes, and what the harness arms.

use dlp_chain::Hash32;
use serde::{Deserialize, Serialize};

use crate::messages::{BadProtocolStep, ProtocolStep};

/// Which messages a hold matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// `sent:CommitmentSigned`, `received:RevokeAndAck`, ... (see [`ProtocolStep`]; kept as
    /// written on the wire and in `Held` events).
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<Hash32>,
    /// Which occurrence (1 = the next one).
    #[serde(default = "one")]
    pub nth: u64,
    /// What to do there (default: hold until released).
    #[serde(default)]
    pub action: StepAction,
}

/// What happens when an armed step is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    /// Stop processing until released.
    #[default]
    Hold,
    /// Take a hot backup right there (the store is exactly that step's state) and go on:
    /// a backup at a precise protocol step without a round trip through the harness.
    Backup,
}

fn one() -> u64 {
    1
}

/// Why a step spec is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad step {0:?}: expected sent:<MessageType> or received:<MessageType>, nth >= 1")]
pub struct BadStep(pub String);

impl From<BadProtocolStep> for BadStep {
    fn from(bad: BadProtocolStep) -> Self {
        BadStep(bad.0)
    }
}

impl StepSpec {
    /// The typed step, if the spec is valid (`nth` at least 1).
    pub fn parse(&self) -> Result<ProtocolStep, BadStep> {
        let step: ProtocolStep = self.step.parse()?;
        if self.nth == 0 {
            return Err(BadStep(self.step.clone()));
        }
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Direction, MessageName};

    #[test]
    fn specs_parse_into_typed_steps_and_keep_the_wire_form() {
        let spec: StepSpec =
            serde_json::from_str(r#"{"step":"received:RevokeAndAck","nth":2}"#).expect("spec");
        assert_eq!(spec.action, StepAction::Hold);
        let step = spec.parse().expect("valid");
        assert_eq!(step.direction, Direction::Received);
        assert_eq!(step.message, MessageName::RevokeAndAck);
        assert_eq!(
            serde_json::to_string(&spec).expect("json"),
            r#"{"step":"received:RevokeAndAck","nth":2,"action":"hold"}"#
        );
        let zero = StepSpec { nth: 0, ..spec };
        assert!(zero.parse().is_err());
    }
}
