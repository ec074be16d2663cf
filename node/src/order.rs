//! The pinned-order gate: what makes a node handle racing inputs in an order it was given
//! (`dev_pin_order`, see [`dlp_node_api::order`]).
//!
//! The gate sits between the core's input queue and its handler. An input that a pin orders
//! (a peer's message, a command that changes channels) is handled when it is the pinned next
//! one; one that arrives before its turn is parked until then. Inputs of one source (a peer,
//! the caller) arrive in their own order, so an early input is checked against its source's
//! next pinned input: when it is another one (or the source has none left) the pin cannot be
//! kept. The gate then says so once ([`Offer::diverged`]), lets everything parked go in arrival
//! order and pins nothing more. Every other input passes straight through, except that an
//! input which must come after a source's parked ones (a peer's connection closing or being
//! replaced, behind the messages it delivered) waits behind them ([`OrderGate::offer_behind`]):
//! without the pin those messages would have been handled first. Nothing here waits on time:
//! an input whose turn never comes stays parked, which the harness sees as a message in flight
//! and reports with the gate's status.

use std::collections::VecDeque;

use dlp_node_api::order::{InputSource, OrderDivergence, OrderStatus, OrderedInput};

/// The gate, generic over what it parks (the core's inputs; plain values in tests).
#[derive(Debug)]
pub(crate) struct OrderGate<T> {
    /// The pinned inputs not yet handled, the next first.
    pending: VecDeque<OrderedInput>,
    /// Inputs that arrived before their turn, in arrival order.
    parked: Vec<Parked<T>>,
    handled: u64,
    total: u64,
    diverged: Option<OrderDivergence>,
}

impl<T> Default for OrderGate<T> {
    fn default() -> Self {
        Self {
            pending: VecDeque::new(),
            parked: Vec::new(),
            handled: 0,
            total: 0,
            diverged: None,
        }
    }
}

/// A parked input: a pinned one waiting for its turn, or an unpinned one waiting behind its
/// source's parked inputs.
#[derive(Debug)]
enum Parked<T> {
    Pinned(OrderedInput, T),
    Behind(InputSource, T),
}

impl<T> Parked<T> {
    fn source(&self) -> InputSource {
        match self {
            Parked::Pinned(input, _) => input.source(),
            Parked::Behind(source, _) => *source,
        }
    }

    fn pinned(&self) -> Option<&OrderedInput> {
        match self {
            Parked::Pinned(input, _) => Some(input),
            Parked::Behind(..) => None,
        }
    }

    fn into_item(self) -> T {
        match self {
            Parked::Pinned(_, item) | Parked::Behind(_, item) => item,
        }
    }
}

/// What to do with an offered input: handle `ready` now, in this order.
#[derive(Debug)]
pub(crate) struct Offer<T> {
    pub ready: Vec<T>,
    /// Set when this input ended the pin.
    pub diverged: Option<OrderDivergence>,
}

impl<T> OrderGate<T> {
    /// Pin `inputs` (replacing any pin). Whatever the previous pin had parked is returned, to
    /// be handled now in arrival order, outside the new pin (so pin at a quiet moment: the
    /// harness does, after quiescence).
    pub(crate) fn pin(&mut self, inputs: Vec<OrderedInput>) -> Vec<T> {
        let released = self.unpin_parked();
        self.total = inputs.len() as u64;
        self.pending = inputs.into();
        self.handled = 0;
        self.diverged = None;
        released
    }

    /// End the pin: its status as it ends, and what it had parked (to be handled now).
    pub(crate) fn unpin(&mut self) -> (OrderStatus, Vec<T>) {
        let status = self.status();
        let released = self.unpin_parked();
        self.pending.clear();
        self.handled = 0;
        self.total = 0;
        self.diverged = None;
        (status, released)
    }

    fn unpin_parked(&mut self) -> Vec<T> {
        std::mem::take(&mut self.parked)
            .into_iter()
            .map(Parked::into_item)
            .collect()
    }

    pub(crate) fn is_pinned(&self) -> bool {
        !self.pending.is_empty()
    }

    /// No pin in force and nothing parked: every input passes as it comes.
    pub(crate) fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.parked.is_empty()
    }

    pub(crate) fn status(&self) -> OrderStatus {
        OrderStatus {
            pinned: self.is_pinned(),
            handled: self.handled,
            total: self.total,
            waiting_for: self.pending.front().cloned(),
            parked: self
                .parked
                .iter()
                .filter_map(Parked::pinned)
                .cloned()
                .collect(),
            diverged: self.diverged.clone(),
        }
    }

    /// An input the pin orders arrived (`None`: one it never orders, which passes).
    pub(crate) fn offer(&mut self, input: Option<OrderedInput>, item: T) -> Offer<T> {
        let pass = |item| Offer {
            ready: vec![item],
            diverged: None,
        };
        let Some(input) = input else {
            return pass(item);
        };
        if !self.is_pinned() {
            return pass(item);
        }
        if self.pending.front().is_some_and(|next| next.admits(&input)) {
            self.take_next();
            let mut ready = vec![item];
            ready.extend(self.release_in_turn());
            return Offer {
                ready,
                diverged: None,
            };
        }
        // Not its turn: it must be its source's next pinned input after those parked already.
        let source = input.source();
        let parked_of_source = self
            .parked
            .iter()
            .filter(|p| p.pinned().is_some_and(|p| p.source() == source))
            .count();
        let expected = self
            .pending
            .iter()
            .filter(|p| p.source() == source)
            .nth(parked_of_source)
            .cloned();
        if expected.as_ref().is_some_and(|e| e.admits(&input)) {
            self.parked.push(Parked::Pinned(input, item));
            return Offer {
                ready: Vec::new(),
                diverged: None,
            };
        }
        let divergence = OrderDivergence {
            position: self.handled,
            waiting_for: self.pending.front().cloned(),
            expected,
            got: input,
        };
        self.pending.clear();
        self.diverged = Some(divergence.clone());
        let mut ready = self.unpin_parked();
        ready.push(item);
        Offer {
            ready,
            diverged: Some(divergence),
        }
    }

    /// An input the pin does not order, but which must be handled after whatever of `source`
    /// is parked (a peer's disconnection or new connection after the messages of the old one):
    /// it waits behind them, or passes when none is parked.
    pub(crate) fn offer_behind(&mut self, source: InputSource, item: T) -> Vec<T> {
        if self.parked.iter().any(|p| p.source() == source) {
            self.parked.push(Parked::Behind(source, item));
            Vec::new()
        } else {
            vec![item]
        }
    }

    fn take_next(&mut self) {
        self.pending.pop_front();
        self.handled += 1;
    }

    /// Parked inputs whose turn has come, in turn order: each source's parked inputs go in
    /// their own order, those waiting behind as soon as nothing of their source is before them.
    fn release_in_turn(&mut self) -> Vec<T> {
        let mut ready = Vec::new();
        loop {
            // Inputs waiting behind whose source has nothing parked before them go now.
            while let Some(at) = self.parked.iter().enumerate().position(|(i, p)| {
                matches!(p, Parked::Behind(..))
                    && !self.parked[..i].iter().any(|q| q.source() == p.source())
            }) {
                ready.push(self.parked.remove(at).into_item());
            }
            let Some(next) = self.pending.front() else {
                break;
            };
            // The first parked input of the next one's source is the only candidate (a
            // source's inputs were parked in their own order).
            let source = next.source();
            let Some(at) = self.parked.iter().position(|p| p.source() == source) else {
                break;
            };
            if !self.parked[at].pinned().is_some_and(|p| next.admits(p)) {
                break;
            }
            ready.push(self.parked.remove(at).into_item());
            self.take_next();
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dlp_chain::Pubkey;
    use dlp_node_api::{MessageName, OrderedCommand};

    fn msg(peer: u8, name: MessageName) -> OrderedInput {
        OrderedInput::Message {
            peer: Pubkey([peer; 33]),
            msg_type: name,
            channel_id: None,
        }
    }

    fn pay() -> OrderedInput {
        OrderedInput::Command {
            command: OrderedCommand::SendPayment,
        }
    }

    fn offer(
        gate: &mut OrderGate<&'static str>,
        input: OrderedInput,
        name: &'static str,
    ) -> Vec<&'static str> {
        let offer = gate.offer(Some(input), name);
        assert!(offer.diverged.is_none(), "{:?}", offer.diverged);
        offer.ready
    }

    #[test]
    fn early_inputs_wait_for_their_turn_and_go_as_soon_as_it_comes() {
        use MessageName::*;
        let mut gate = OrderGate::default();
        gate.pin(vec![
            msg(1, AddTlc),
            pay(),
            msg(2, AddTlc),
            msg(2, CommitmentSigned),
            msg(1, CommitmentSigned),
        ]);
        // Peer 2's messages and the command came first: all wait for peer 1's AddTlc.
        assert!(offer(&mut gate, msg(2, AddTlc), "b1").is_empty());
        assert!(offer(&mut gate, msg(2, CommitmentSigned), "b2").is_empty());
        assert!(offer(&mut gate, pay(), "pay").is_empty());
        assert_eq!(gate.status().parked.len(), 3);
        assert_eq!(
            offer(&mut gate, msg(1, AddTlc), "a1"),
            ["a1", "pay", "b1", "b2"]
        );
        assert_eq!(offer(&mut gate, msg(1, CommitmentSigned), "a2"), ["a2"]);
        let status = gate.status();
        assert!(!status.pinned && status.finished(), "{status:?}");
        assert_eq!((status.handled, status.total), (5, 5));
        // Unpinned: everything passes.
        assert_eq!(offer(&mut gate, msg(3, Shutdown), "x"), ["x"]);
        assert_eq!(gate.offer(None, "free").ready, ["free"]);
    }

    #[test]
    fn an_input_the_pin_has_no_place_for_ends_it_and_frees_what_waited() {
        use MessageName::*;
        let mut gate = OrderGate::default();
        gate.pin(vec![msg(1, AddTlc), msg(2, AddTlc), msg(2, RevokeAndAck)]);
        assert!(offer(&mut gate, msg(2, AddTlc), "b1").is_empty());
        // Peer 2's next pinned input is RevokeAndAck, not CommitmentSigned.
        let offered = gate.offer(Some(msg(2, CommitmentSigned)), "b2");
        assert_eq!(
            offered.ready,
            ["b1", "b2"],
            "parked first, in arrival order"
        );
        let divergence = offered.diverged.expect("diverged");
        assert_eq!(divergence.position, 0);
        assert_eq!(divergence.waiting_for, Some(msg(1, AddTlc)));
        assert_eq!(divergence.expected, Some(msg(2, RevokeAndAck)));
        assert_eq!(divergence.got, msg(2, CommitmentSigned));
        let text = divergence.to_string();
        assert_eq!(
            text,
            "at pinned input 1, waiting for AddTlc from 0x01010101: CommitmentSigned from \
             0x02020202 arrived where the pin expects RevokeAndAck from 0x02020202 next"
        );
        assert!(!gate.is_pinned());
        assert_eq!(gate.status().diverged, Some(divergence));
        assert_eq!(
            offer(&mut gate, msg(1, AddTlc), "a1"),
            ["a1"],
            "pins nothing more"
        );
        // A source with nothing left pinned diverges too.
        gate.pin(vec![msg(1, AddTlc), msg(1, CommitmentSigned)]);
        let offered = gate.offer(Some(msg(3, AddTlc)), "c");
        assert_eq!(offered.diverged.expect("diverged").expected, None);
    }

    #[test]
    fn a_connection_event_waits_behind_the_messages_parked_before_it() {
        use MessageName::*;
        let peer = dlp_node_api::InputSource::Peer(Pubkey([2; 33]));
        let mut gate = OrderGate::default();
        gate.pin(vec![msg(1, AddTlc), msg(2, AddTlc), msg(1, RevokeAndAck)]);
        assert_eq!(
            gate.offer_behind(peer, "nothing of 2 parked"),
            ["nothing of 2 parked"]
        );
        assert!(offer(&mut gate, msg(2, AddTlc), "b1").is_empty());
        // Peer 2's connection ends after its AddTlc: the end waits behind it.
        assert!(gate.offer_behind(peer, "b disconnected").is_empty());
        assert_eq!(
            gate.status().parked,
            [msg(2, AddTlc)],
            "only pinned inputs listed"
        );
        assert_eq!(
            offer(&mut gate, msg(1, AddTlc), "a1"),
            ["a1", "b1", "b disconnected"]
        );
        assert_eq!(offer(&mut gate, msg(1, RevokeAndAck), "a2"), ["a2"]);
        assert!(gate.status().finished());
    }

    #[test]
    fn unpinning_reports_where_the_pin_stood_and_frees_what_waited() {
        use MessageName::*;
        let mut gate = OrderGate::default();
        gate.pin(vec![msg(1, AddTlc), msg(2, AddTlc)]);
        assert!(offer(&mut gate, msg(2, AddTlc), "b").is_empty());
        let (status, released) = gate.unpin();
        assert_eq!(released, ["b"]);
        assert!(status.pinned && !status.finished());
        assert_eq!(status.waiting_for, Some(msg(1, AddTlc)));
        assert_eq!(status.parked, [msg(2, AddTlc)]);
        assert_eq!(gate.status(), OrderStatus::default());
    }
}
