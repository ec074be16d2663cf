//! The core's public face: commands (what the RPC layer and embeddings ask), their answers,
//! and the handle that sends them.

use dlp_chain::{Hash32, Pubkey};
use tokio::sync::{mpsc, oneshot, watch};

use super::payments::{Invoice, Payment, SendPaymentRequest};
use crate::transport::{Connection, TransportEvent};
use dlp_chain::ChainEvent;
pub(crate) use dlp_node_api::channel::{ChannelInfo, PeerInfo, TlcInfo};

/// A command from the RPC layer or an embedding.
#[derive(Debug)]
pub(crate) enum Command {
    DisconnectPeer {
        pubkey: Pubkey,
        reply: oneshot::Sender<Result<(), String>>,
    },
    ListPeers {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    OpenChannel {
        pubkey: Pubkey,
        funding_amount: u64,
        reply: oneshot::Sender<Result<Hash32, String>>,
    },
    AcceptChannel {
        temporary_channel_id: Hash32,
        reply: oneshot::Sender<Result<Hash32, String>>,
    },
    ListChannels {
        pubkey: Option<Pubkey>,
        include_closed: bool,
        reply: oneshot::Sender<Vec<ChannelInfo>>,
    },
    NewInvoice {
        amount: u64,
        description: Option<String>,
        reply: oneshot::Sender<Result<Invoice, String>>,
    },
    SendPayment {
        request: SendPaymentRequest,
        reply: oneshot::Sender<Result<Payment, String>>,
    },
    GetPayment {
        payment_hash: Hash32,
        reply: oneshot::Sender<Option<Payment>>,
    },
    ShutdownChannel {
        channel_id: Hash32,
        force: bool,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Register an authenticated connection (from `connect_peer`); replies once registered.
    AddConnection {
        conn: Box<Connection>,
        reply: oneshot::Sender<()>,
    },
    /// Pin the order of racing inputs (`dev_pin_order`); replies at once (see `crate::order`).
    PinOrder {
        inputs: Vec<dlp_node_api::OrderedInput>,
        reply: oneshot::Sender<()>,
    },
    /// Where the pin stands; with `unpin`, end it (`dev_order_status`, `dev_unpin_order`).
    OrderStatus {
        unpin: bool,
        reply: oneshot::Sender<dlp_node_api::OrderStatus>,
    },
    /// Every channel of the gossip graph, in channel id order.
    GraphChannels {
        reply: oneshot::Sender<Vec<crate::graph::GraphChannel>>,
    },
    /// Our current commitment, fully signed, without broadcasting it (tests keep an old one to
    /// broadcast later and prove the peer's watcher punishes it).
    #[cfg(test)]
    DevSignedCommitment {
        channel_id: Hash32,
        reply: oneshot::Sender<Result<dlp_chain::Transaction, String>>,
    },
}

/// Inputs of the core.
#[derive(Debug)]
pub(crate) enum CoreInput {
    Transport(Box<TransportEvent>),
    Chain(Vec<ChainEvent>),
    Command(Command),
    /// The core's own timer (`audit.stale_reveal_after_ms`) for a Stale channel on the
    /// connection `conn_id` to `peer` ran out. Sent only by the core's timer task; a timer of a
    /// connection that has since ended or been replaced does nothing.
    StaleRevealDue {
        peer: dlp_chain::Pubkey,
        conn_id: u64,
        channel_id: Hash32,
    },
    Stop,
}

/// How the RPC layer and embeddings talk to the core.
#[derive(Debug, Clone)]
pub(crate) struct CoreHandle {
    pub(super) inputs: mpsc::UnboundedSender<CoreInput>,
    pub(super) transport: mpsc::UnboundedSender<TransportEvent>,
    /// Set once, when the core fail-stops; closed when the core task ends.
    pub(super) fail_stop: watch::Receiver<Option<FailStop>>,
}

/// Why the core stopped on its own: a store write failed (a full disk, say), so memory is
/// ahead of disk and the core processes nothing more. A restart reloads the durable state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct FailStop {
    pub(crate) reason: String,
}

/// The core is gone: the node is stopping, or it fail-stopped (then the reason says why, and
/// a command that was being handled did not take effect durably).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CoreGone {
    #[error("the node is shutting down")]
    Stopped,
    #[error("the node fail-stopped and processes nothing more: {0}")]
    FailStopped(FailStop),
}

impl CoreHandle {
    /// Send a command built around a reply channel and wait for the reply.
    pub(crate) async fn request<T>(
        &self,
        build: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, CoreGone> {
        let (reply, rx) = oneshot::channel();
        self.inputs
            .send(CoreInput::Command(build(reply)))
            .map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())
    }

    fn gone(&self) -> CoreGone {
        match self.fail_stop() {
            Some(fail) => CoreGone::FailStopped(fail),
            None => CoreGone::Stopped,
        }
    }

    /// Why the core fail-stopped, if it did.
    pub(crate) fn fail_stop(&self) -> Option<FailStop> {
        self.fail_stop.borrow().clone()
    }

    /// Resolves when the core task ends: `Some` when it fail-stopped (a store write failed),
    /// `None` when it ended any other way (stopped, crashed, or a panic). A supervisor of the
    /// node (the `dlp-node` binary) waits on this to exit instead of serving a dead core.
    pub(crate) async fn fail_stopped(&self) -> Option<FailStop> {
        let mut rx = self.fail_stop.clone();
        if let Ok(value) = rx.wait_for(Option::is_some).await {
            return value.clone();
        }
        // The core task ended; it may still have set the value just before.
        rx.borrow().clone()
    }

    /// Hand an established connection to the core; returns once the core registered it.
    pub(crate) async fn connected(&self, conn: Connection) -> Result<(), CoreGone> {
        self.request(|reply| Command::AddConnection {
            conn: Box::new(conn),
            reply,
        })
        .await
    }

    /// The sender transport tasks report to.
    pub(crate) fn transport_sender(&self) -> mpsc::UnboundedSender<TransportEvent> {
        self.transport.clone()
    }

    /// End any pinned order without waiting for the answer: what it parked is handled now (a
    /// stopping node must not wait on a command that waits for its turn).
    pub(crate) fn unpin(&self) {
        let (reply, _) = oneshot::channel();
        let _ = self.inputs.send(CoreInput::Command(Command::OrderStatus {
            unpin: true,
            reply,
        }));
    }

    /// Ask the core to stop after the current input.
    pub(crate) fn stop(&self) {
        let _ = self.inputs.send(CoreInput::Stop);
    }
}
