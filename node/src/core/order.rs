//! The core's side of a pinned input order (`crate::order`): which of its inputs a pin orders,
//! the commands that set or end a pin, and the `command_handled` events a run's order is
//! recorded from.

use dlp_chain::Pubkey;
use dlp_node_api::{EventKind, InputSource, OrderedCommand, OrderedInput};

use super::{Command, Core, CoreInput};
use crate::transport::TransportEvent;

impl Core {
    /// What to handle now for `input`: nothing (it waits for its turn), it, or it with inputs
    /// whose turn it brought. Pin commands are answered here, never held.
    pub(super) fn admit(&mut self, input: CoreInput) -> Vec<CoreInput> {
        let input = match input {
            CoreInput::Command(Command::PinOrder { inputs, reply }) => {
                let released = self.order.pin(inputs);
                let _ = reply.send(());
                return released;
            }
            CoreInput::Command(Command::OrderStatus { unpin, reply }) => {
                if !unpin {
                    let _ = reply.send(self.order.status());
                    return Vec::new();
                }
                let (status, released) = self.order.unpin();
                let _ = reply.send(status);
                return released;
            }
            other => other,
        };
        // Without a pin nothing is parked: every input goes at once, unclassified.
        if self.order.is_idle() {
            return vec![input];
        }
        let ordered = self.ordered(&input);
        // A peer's connection events, and messages of a connection not (yet) current, come
        // after whatever of that peer is parked: handled before, they would drop it.
        if ordered.is_none()
            && let Some(peer) = behind_peer(&input)
        {
            return self.order.offer_behind(InputSource::Peer(peer), input);
        }
        let offer = self.order.offer(ordered, input);
        if let Some(divergence) = offer.diverged {
            tracing::warn!(%divergence, "pinned order diverged; handling inputs as they come");
            self.publish(EventKind::OrderDiverged { divergence });
        }
        offer.ready
    }

    /// The input as a pin names it, if a pin orders it: a message on a peer's current
    /// connection (one of an old connection is dropped unhandled anyway), or a command that
    /// changes channels or connections.
    fn ordered(&self, input: &CoreInput) -> Option<OrderedInput> {
        match input {
            CoreInput::Transport(event) => match event.as_ref() {
                TransportEvent::Message {
                    conn_id,
                    pubkey,
                    message,
                } if self.peers.get(pubkey).map(|c| c.conn_id) == Some(*conn_id) => {
                    Some(OrderedInput::Message {
                        peer: *pubkey,
                        msg_type: message.name(),
                        channel_id: message.channel_id(),
                    })
                }
                _ => None,
            },
            CoreInput::Command(command) => {
                ordered_command(command).map(|command| OrderedInput::Command { command })
            }
            _ => None,
        }
    }

    /// Announce a handled command a pin would order (with the input's other events).
    pub(super) fn note_command(&mut self, command: &Command) {
        if let Some(command) = ordered_command(command) {
            self.fx.events.push(EventKind::CommandHandled { command });
        }
    }
}

/// The peer a transport event is of.
fn behind_peer(input: &CoreInput) -> Option<Pubkey> {
    match input {
        CoreInput::Transport(event) => Some(match event.as_ref() {
            TransportEvent::Connected(conn) => conn.pubkey,
            TransportEvent::Message { pubkey, .. }
            | TransportEvent::Disconnected { pubkey, .. } => *pubkey,
        }),
        _ => None,
    }
}

fn ordered_command(command: &Command) -> Option<OrderedCommand> {
    Some(match command {
        Command::SendPayment { .. } => OrderedCommand::SendPayment,
        Command::OpenChannel { .. } => OrderedCommand::OpenChannel,
        Command::AcceptChannel { .. } => OrderedCommand::AcceptChannel,
        Command::ShutdownChannel { .. } => OrderedCommand::ShutdownChannel,
        Command::AddConnection { .. } => OrderedCommand::ConnectPeer,
        Command::DisconnectPeer { .. } => OrderedCommand::DisconnectPeer,
        _ => return None,
    })
}
