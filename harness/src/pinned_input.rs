//! One input of a pinned order, by the scenario's names: `"AddTlc from alice on alice-bob"`,
//! `"CommitmentSigned from carol"`, `"rpc send_payment"`. A plain type every layer may use: the
//! format parses and checks it (`pin_order`), the cluster resolves its names to the node's
//! keys and channel ids, the sweep and the explorer write the orders they recorded in it.

use std::fmt;

use dlp_node_api::{MessageName, OrderedCommand};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A message from a named peer (on a named channel, or any), or a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinnedInput {
    Message {
        msg_type: MessageName,
        from: String,
        channel: Option<String>,
    },
    Command(OrderedCommand),
}

impl PinnedInput {
    /// Parse `"<Message> from <node> [on <channel>]"` or `"rpc <command>"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let expected = || {
            format!(
                "pinned input {text:?}: expected \"<Message> from <node>\", \"<Message> from \
                 <node> on <channel>\" or \"rpc <command>\""
            )
        };
        match words.as_slice() {
            ["rpc", command] => OrderedCommand::parse(command)
                .map(PinnedInput::Command)
                .ok_or_else(|| {
                    let known: Vec<&str> =
                        OrderedCommand::ALL.iter().map(|c| c.as_str()).collect();
                    format!(
                        "pinned input {text:?}: {command} is not a command a pin orders (one of {})",
                        known.join(", ")
                    )
                }),
            [message, "from", from, rest @ ..] => {
                let channel = match rest {
                    [] => None,
                    ["on", channel] => Some((*channel).to_string()),
                    _ => return Err(expected()),
                };
                let msg_type = MessageName::from(*message);
                if !msg_type.is_known() {
                    return Err(format!(
                        "pinned input {text:?}: unknown message {message} (one of {})",
                        MessageName::list()
                    ));
                }
                Ok(PinnedInput::Message {
                    msg_type,
                    from: (*from).to_string(),
                    channel,
                })
            }
            _ => Err(expected()),
        }
    }
}

impl fmt::Display for PinnedInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinnedInput::Message {
                msg_type,
                from,
                channel,
            } => {
                write!(f, "{msg_type} from {from}")?;
                if let Some(channel) = channel {
                    write!(f, " on {channel}")?;
                }
                Ok(())
            }
            PinnedInput::Command(command) => write!(f, "rpc {command}"),
        }
    }
}

impl Serialize for PinnedInput {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PinnedInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PinnedInput::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for PinnedInput {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PinnedInput".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "\"<Message> from <node>\", \"<Message> from <node> on <channel>\" or \"rpc <command>\"",
            "pattern": "^(rpc [a-z_]+|[A-Za-z]+ from [^ ]+( on [^ ]+)?)$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_parse_and_print_back_the_same() {
        for text in [
            "AddTlc from alice on alice-bob",
            "RevokeAndAck from carol",
            "rpc send_payment",
            "rpc shutdown_channel",
        ] {
            let input = PinnedInput::parse(text).expect(text);
            assert_eq!(input.to_string(), text);
        }
        assert_eq!(
            PinnedInput::parse("AddTlc from alice on ab").expect("valid"),
            PinnedInput::Message {
                msg_type: MessageName::AddTlc,
                from: "alice".into(),
                channel: Some("ab".into())
            }
        );
    }

    #[test]
    fn bad_inputs_say_what_was_expected() {
        let err = PinnedInput::parse("AddTlc alice").expect_err("no from");
        assert!(err.contains("expected \"<Message> from <node>\""), "{err}");
        let err = PinnedInput::parse("AddTlcc from alice").expect_err("unknown");
        assert!(
            err.contains("unknown message AddTlcc (one of OpenChannel"),
            "{err}"
        );
        let err = PinnedInput::parse("rpc list_channels").expect_err("not ordered");
        assert!(err.contains("one of send_payment, open_channel"), "{err}");
        let err = PinnedInput::parse("AddTlc from alice at ab").expect_err("bad tail");
        assert!(err.contains("expected"), "{err}");
    }
}
