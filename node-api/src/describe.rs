//! Events in words, one line each: the only place that says what an event means to a reader.
//! The harness's text timeline prints [`EventKind`]'s `Display` (ids shortened to their first
//! bytes); its HTML report prints [`EventKind::describe`] with the scenario's names for
//! channels, nodes and backups ([`Naming`]).
//!
//! Upper case marks what a reader looks for first: `PASSED`/`FAILED` audits, `IGNORED`,
//! `REFUSED`, `REJECTED`, `UNKNOWN`, `HELD`, `DISABLED`, `ERROR`.

use std::fmt;

use dlp_chain::{Hash32, Pubkey};

use crate::events::{AuditEvent, AuditOutcome, EventKind, NodeEvent};

/// How a description names what an event carries. The defaults shorten ids to their first
/// bytes (`0x1c5aafec`) and show a backup by its directory.
pub trait Naming {
    fn channel(&self, id: &Hash32) -> String {
        short(&id.to_string())
    }

    fn node(&self, key: &Pubkey) -> String {
        short(&key.to_string())
    }

    fn backup(&self, dir: &str) -> String {
        dir.to_string()
    }
}

/// The default [`Naming`]: short ids.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShortIds;

impl Naming for ShortIds {}

/// The first ten characters of an id's hex (`0x` and four bytes).
pub fn short(id: &str) -> String {
    id.chars().take(10).collect()
}

/// An event described with a [`Naming`] (see [`EventKind::describe`]).
#[derive(Debug)]
pub struct Described<'a, N: ?Sized> {
    kind: &'a EventKind,
    names: &'a N,
}

impl EventKind {
    /// The event in words, naming channels, nodes and backups with `names`.
    pub fn describe<'a, N: Naming + ?Sized>(&'a self, names: &'a N) -> Described<'a, N> {
        Described { kind: self, names }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.describe(&ShortIds).fmt(f)
    }
}

impl fmt::Display for NodeEvent {
    /// `#12 sent CommitmentSigned on 0x1c5aafec (L3 R2)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {}", self.seq, self.kind)
    }
}

impl<N: Naming + ?Sized> fmt::Display for Described<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names;
        let ch = |id: &Hash32| names.channel(id);
        let on = |id: &Option<Hash32>| id.map(|c| format!(" on {}", ch(&c))).unwrap_or_default();
        let node = |key: &Pubkey| names.node(key);
        match self.kind {
            EventKind::Started { pubkey } => write!(f, "started as {}", node(pubkey)),
            EventKind::PeerConnected { peer, inbound } => write!(
                f,
                "connected {} {}",
                if *inbound { "from" } else { "to" },
                node(peer)
            ),
            EventKind::PeerDisconnected { peer, reason } => {
                write!(f, "disconnected from {} ({reason})", node(peer))
            }
            EventKind::MessageSent {
                msg_type,
                channel_id,
                local,
                remote,
                ..
            } => write!(f, "sent {msg_type}{} (L{local} R{remote})", on(channel_id)),
            EventKind::MessageReceived {
                msg_type,
                channel_id,
                local,
                remote,
                ..
            } => write!(
                f,
                "received {msg_type}{} (L{local} R{remote})",
                on(channel_id)
            ),
            EventKind::MessageIgnored {
                msg_type,
                channel_id,
                reason,
                ..
            } => write!(f, "IGNORED {msg_type}{}: {reason}", on(channel_id)),
            EventKind::StateChanged {
                channel_id,
                from,
                to,
            } => write!(f, "{}: {from} → {to}", ch(channel_id)),
            EventKind::Persisted {
                channel_id,
                local,
                remote,
            } => write!(f, "persisted {} (L{local} R{remote})", ch(channel_id)),
            EventKind::TxBroadcast {
                kind,
                accepted,
                reject_reason,
                ..
            } => {
                if *accepted {
                    write!(f, "broadcast {kind} accepted")
                } else {
                    write!(
                        f,
                        "broadcast {kind} REJECTED: {}",
                        reject_reason.as_deref().unwrap_or_default()
                    )
                }
            }
            EventKind::Audit(AuditEvent {
                channel_id,
                policy,
                local,
                remote,
                peer_local,
                peer_remote,
                outcome,
            }) => {
                let verdict = match outcome {
                    AuditOutcome::Passed => "PASSED",
                    AuditOutcome::Failed { .. } => "FAILED",
                };
                write!(
                    f,
                    "audit {verdict} ({policy}) on {}: ours L{local} R{remote}, peer \
                     L{peer_local} R{peer_remote}",
                    ch(channel_id)
                )?;
                match outcome {
                    AuditOutcome::Passed => Ok(()),
                    AuditOutcome::Failed { reason } => write!(f, ": {reason}"),
                }
            }
            EventKind::UnknownChannelReestablish { peer, channel_id } => write!(
                f,
                "UNKNOWN channel {} reestablished by {}: asked it to force-close",
                ch(channel_id),
                node(peer)
            ),
            EventKind::RecoveredFromUnknownChannel {
                channel_id,
                txid,
                amount,
            } => write!(
                f,
                "recovered {amount} from unknown channel {} (tx {})",
                ch(channel_id),
                short(&txid.to_string())
            ),
            EventKind::GraphChannelAdded {
                channel_id,
                node_1,
                node_2,
                capacity,
            } => write!(
                f,
                "graph + {} ({} - {}, {capacity})",
                ch(channel_id),
                node(node_1),
                node(node_2)
            ),
            EventKind::GraphChannelUpdated {
                channel_id,
                node: by,
                enabled,
            } => write!(
                f,
                "graph ~ {} ({} {})",
                ch(channel_id),
                node(by),
                if *enabled { "forwards" } else { "DISABLED" }
            ),
            EventKind::GraphChannelRemoved { channel_id } => {
                write!(f, "graph - {} (funding spent)", ch(channel_id))
            }
            EventKind::GossipRefused {
                peer,
                msg_type,
                reason,
            } => write!(f, "REFUSED {msg_type} from {}: {reason}", node(peer)),
            EventKind::PaymentUpdated {
                payment_hash,
                status,
                reason,
            } => write!(
                f,
                "payment {} {status}{}",
                short(&payment_hash.to_string()),
                reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            EventKind::Held { step } => write!(f, "HELD at {step}"),
            EventKind::Released { step } => write!(f, "released from {step}"),
            EventKind::BackupWritten {
                dir,
                step,
                automatic,
            } => {
                write!(f, "backup {} written", names.backup(dir))?;
                match (step, automatic) {
                    (Some(step), _) => write!(f, " at {step}"),
                    (None, true) => f.write_str(" (automatic)"),
                    (None, false) => Ok(()),
                }
            }
            EventKind::CommandHandled { command } => write!(f, "handled rpc {command}"),
            EventKind::OrderDiverged { divergence } => {
                write!(f, "PINNED ORDER DIVERGED {}", divergence.named(names))
            }
            EventKind::Error {
                channel_id,
                message,
            } => write!(f, "ERROR{}: {message}", on(channel_id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelState;
    use crate::config::AuditPolicy;
    use crate::messages::MessageName;

    struct Scenario;

    impl Naming for Scenario {
        fn channel(&self, _: &Hash32) -> String {
            "ab".into()
        }
        fn node(&self, _: &Pubkey) -> String {
            "bob".into()
        }
        fn backup(&self, _: &str) -> String {
            "\"old\"".into()
        }
    }

    #[test]
    fn events_read_as_one_line_with_short_ids_or_the_callers_names() {
        let id = Hash32([0xab; 32]);
        let sent = EventKind::MessageSent {
            peer: Pubkey([2; 33]),
            msg_type: MessageName::CommitmentSigned,
            channel_id: Some(id),
            local: 3,
            remote: 2,
        };
        assert_eq!(
            sent.to_string(),
            "sent CommitmentSigned on 0xabababab (L3 R2)"
        );
        assert_eq!(
            sent.describe(&Scenario).to_string(),
            "sent CommitmentSigned on ab (L3 R2)"
        );
        let failed = EventKind::Audit(AuditEvent {
            channel_id: id,
            policy: AuditPolicy::Strict,
            local: 1,
            remote: 2,
            peer_local: 3,
            peer_remote: 4,
            outcome: AuditOutcome::Failed {
                reason: "peer ahead".into(),
            },
        });
        assert_eq!(
            failed.describe(&Scenario).to_string(),
            "audit FAILED (strict) on ab: ours L1 R2, peer L3 R4: peer ahead"
        );
        let state = EventKind::StateChanged {
            channel_id: id,
            from: ChannelState::Stale,
            to: ChannelState::ChannelReady,
        };
        assert_eq!(
            state.describe(&Scenario).to_string(),
            "ab: Stale → ChannelReady"
        );
        let backup = EventKind::BackupWritten {
            dir: "/b/1".into(),
            step: None,
            automatic: true,
        };
        assert_eq!(backup.to_string(), "backup /b/1 written (automatic)");
        assert_eq!(
            NodeEvent {
                seq: 7,
                at_ms: 0,
                kind: backup
            }
            .to_string(),
            "#7 backup /b/1 written (automatic)"
        );
    }
}
