//! The dispatch of commands (from the RPC layer and embeddings) to the handlers that answer them.
//!
//! A command is an input like any other: its handler changes memory and queues effects, and its
//! reply is held until [`Core::flush`] made those effects durable. After a failed write the held
//! replies are dropped, so a caller never sees a success that is not on disk.

use tokio::sync::oneshot;

use super::{Command, Core, PeerInfo};

/// Replies to send once the input's effects are durable (see `flush`).
pub(super) type Replies = Vec<Box<dyn FnOnce() + Send>>;

impl Core {
    /// Act on one command; its reply waits in `replies` until the input's effects are durable.
    pub(super) async fn on_command(&mut self, command: Command, replies: &mut Replies) {
        fn later<T: Send + 'static>(replies: &mut Replies, reply: oneshot::Sender<T>, value: T) {
            replies.push(Box::new(move || {
                let _ = reply.send(value);
            }));
        }
        self.note_command(&command);
        match command {
            Command::DisconnectPeer { pubkey, reply } => {
                let result = match self.peers.remove(&pubkey) {
                    Some(conn) => {
                        conn.close();
                        self.on_disconnected(pubkey, "disconnect_peer".into());
                        Ok(())
                    }
                    None => Err(format!("peer {pubkey} is not connected")),
                };
                later(replies, reply, result);
            }
            Command::ListPeers { reply } => {
                let peers = self
                    .peers
                    .values()
                    .map(|c| PeerInfo {
                        pubkey: c.pubkey,
                        address: c.addr.to_string(),
                        inbound: c.inbound,
                    })
                    .collect();
                later(replies, reply, peers);
            }
            Command::OpenChannel {
                pubkey,
                funding_amount,
                reply,
            } => {
                let result = self.open_channel(pubkey, funding_amount).await;
                later(replies, reply, result);
            }
            Command::AcceptChannel {
                temporary_channel_id,
                reply,
            } => {
                let result = self.accept_proposal(temporary_channel_id);
                later(replies, reply, result);
            }
            Command::ListChannels {
                pubkey,
                include_closed,
                reply,
            } => {
                let list = self.list_channels(pubkey, include_closed);
                later(replies, reply, list);
            }
            Command::NewInvoice {
                amount,
                description,
                reply,
            } => {
                let result = self.new_invoice(amount, description);
                later(replies, reply, result);
            }
            Command::SendPayment { request, reply } => {
                let result = self.send_payment(request);
                later(replies, reply, result);
            }
            Command::GetPayment {
                payment_hash,
                reply,
            } => {
                let payment = self.payments.outgoing.get(&payment_hash).cloned();
                later(replies, reply, payment);
            }
            Command::ShutdownChannel {
                channel_id,
                force,
                reply,
            } => {
                let result = self.shutdown_channel(channel_id, force);
                later(replies, reply, result);
            }
            Command::AddConnection { conn, reply } => {
                self.on_connected(*conn);
                later(replies, reply, ());
            }
            // Answered where inputs are admitted (`order`), never handled here.
            Command::PinOrder { .. } | Command::OrderStatus { .. } => {}
            Command::GraphChannels { reply } => {
                let channels = self.graph.channels().cloned().collect();
                later(replies, reply, channels);
            }
            #[cfg(test)]
            Command::DevSignedCommitment { channel_id, reply } => {
                let result = self
                    .our_signed_commitment(channel_id)
                    .map(|(tx, _)| tx)
                    .map_err(|e| e.to_string());
                later(replies, reply, result);
            }
        }
    }
}
