//! Who is connected to whom: connect (one dials the other, both see the connection),
//! disconnect, and partitions. A partition is cut by the driver below the nodes when it can (a
//! node that redials cannot escape it); otherwise the cluster cuts it at the connection level:
//! it drops the connection and refuses `connect` between the pair until `heal` (dlp-node never
//! redials by itself, so on loopback that is a real cut). The connection is dropped by a side
//! that answers: not a paused node (it answers nothing) nor one held at a step (its core
//! answers no command until released), so a partition can fall in the middle of a protocol
//! step.

use std::time::Duration;

use dlp_node_api::EventKind;

use super::{Idle, Network};
use crate::error::HarnessError;

fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

impl Network {
    /// Cut `a` and `b` apart until [`heal`](Self::heal). Their live connection is dropped
    /// first, by a side that answers, and the other side is given the chance to see it end (a
    /// FIN cannot cross a path the driver has cut); then the driver cuts the path below the
    /// nodes if it can, else the cluster refuses `connect` between them until healed.
    pub async fn partition(&mut self, a: &str, b: &str) -> Result<(), HarnessError> {
        if let Some((from, to)) = self.answering_side(a, b).await? {
            let after = self.last_seq(to)?;
            let peer = self.pubkey(to)?;
            let dropped = self.client(from)?.disconnect_peer(&peer).await?.is_ok();
            // Not connected is fine: the pair is cut either way.
            if dropped && self.is_running(to) && !self.is_paused(to) && !self.is_held(to)? {
                let gone = self.pubkey(from)?;
                self.wait_event(
                    to,
                    after,
                    &format!("{to} to see {from} disconnect"),
                    |k| matches!(k, EventKind::PeerDisconnected { peer, .. } if *peer == gone),
                )
                .await?;
            }
        }
        let (sa, sb) = (self.entry(a)?.spec.clone(), self.entry(b)?.spec.clone());
        let by_driver = self.driver.partition(&sa, &sb).await?;
        self.partitions.insert(pair(a, b), by_driver);
        Ok(())
    }

    /// `(a, b)`, or `(b, a)` when only `b` can drop the connection now: running, not paused,
    /// not held at a step (looked at after fetching its latest events). `None`: neither can.
    async fn answering_side<'n>(
        &mut self,
        a: &'n str,
        b: &'n str,
    ) -> Result<Option<(&'n str, &'n str)>, HarnessError> {
        for (from, to) in [(a, b), (b, a)] {
            if !self.is_running(from) || self.is_paused(from) {
                continue;
            }
            self.poll(from, Duration::ZERO).await?;
            if !self.is_held(from)? {
                return Ok(Some((from, to)));
            }
        }
        Ok(None)
    }

    /// Undo a partition; `a` dials `b` again.
    pub async fn heal(&mut self, a: &str, b: &str) -> Result<(), HarnessError> {
        if let Some(true) = self.partitions.remove(&pair(a, b)) {
            let (sa, sb) = (self.entry(a)?.spec.clone(), self.entry(b)?.spec.clone());
            self.driver.heal(&sa, &sb).await?;
        }
        self.connect(a, b).await
    }

    /// The address `b`'s peers dial (its driver's say, from what it advertises).
    fn dial_address(&self, b: &str) -> Result<String, HarnessError> {
        let advertised = &self.info(b)?.addresses;
        self.entry(b)?
            .handle
            .as_ref()
            .ok_or_else(|| HarnessError::node(b, "is not running"))?
            .dial_address(advertised)
            .ok_or_else(|| HarnessError::node(b, "has no address"))
    }

    /// `a` dials `b` itself (its `connect_peer`, bypassing the partition bookkeeping that makes
    /// [`connect`](Self::connect) refuse) and says whether a connection between them was made
    /// within `within`: the dial succeeded, or either node reported the other connected (`b`
    /// too: a dial can complete while `a`'s core is held). A dial that fails ends the look
    /// early; one still pending at the end is abandoned (the node gives it up at its own
    /// handshake timeout). What happened goes into the timeline.
    pub async fn try_dial(
        &mut self,
        a: &str,
        b: &str,
        within: Duration,
    ) -> Result<bool, HarnessError> {
        let (after_a, after_b) = (self.last_seq(a)?, self.last_seq(b)?);
        let address = self.dial_address(b)?;
        let (pa, pb) = (self.pubkey(a)?, self.pubkey(b)?);
        let client = self.client(a)?.clone();
        let mut dial = tokio::spawn(async move { client.connect_peer(&address).await });
        let wait = self.wait_within(format!("{a} dialling {b}"), within);
        let connected = |net: &Network| -> Result<bool, HarnessError> {
            let saw = |node: &str, after: u64, peer| -> Result<bool, HarnessError> {
                Ok(net.events(node)?.iter().any(|e| {
                    e.seq > after
                        && matches!(e.kind, EventKind::PeerConnected { peer: p, .. } if p == peer)
                }))
            };
            Ok(saw(a, after_a, pb)? || saw(b, after_b, pa)?)
        };
        let mut answer = None;
        let outcome = loop {
            self.poll(b, Duration::ZERO).await?;
            if connected(self)? {
                break (true, "a connection was made".to_string());
            }
            if let Some(answer) = answer.take() {
                // Its events, if it connected after all.
                self.poll(a, Duration::ZERO).await?;
                self.poll(b, Duration::ZERO).await?;
                break match answer {
                    Ok(()) => (true, "connect_peer succeeded".to_string()),
                    Err(_) if connected(self)? => (true, "a connection was made".to_string()),
                    Err(e) => (false, format!("the dial failed: {e}")),
                };
            }
            tokio::select! {
                idled = self.idle_within(&wait, Idle::NodeEvents(a.to_string())) => {
                    if !idled? {
                        dial.abort();
                        self.poll(a, Duration::ZERO).await?;
                        self.poll(b, Duration::ZERO).await?;
                        break match connected(self)? {
                            true => (true, "a connection was made".to_string()),
                            false => (false, format!("no connection within {within:?}")),
                        };
                    }
                }
                joined = &mut dial => {
                    answer = Some(joined.map_err(|e| {
                        HarnessError::Setup(format!("the dial task failed: {e}"))
                    })?);
                }
            }
        };
        self.note_step(format!("{a} dialled {b} itself: {}", outcome.1));
        Ok(outcome.0)
    }

    /// Connect `a` to `b` (a dials the address b's driver says peers dial) and wait until both
    /// see the connection.
    pub async fn connect(&mut self, a: &str, b: &str) -> Result<(), HarnessError> {
        if self.partitions.get(&pair(a, b)) == Some(&false) {
            return Err(HarnessError::Setup(format!(
                "{a} and {b} are partitioned; heal them first"
            )));
        }
        let (after_a, after_b) = (self.last_seq(a)?, self.last_seq(b)?);
        let address = self.dial_address(b)?;
        let (pa, pb) = (self.pubkey(a)?, self.pubkey(b)?);
        self.client(a)?.connect_peer(&address).await?;
        self.wait_event(
            a,
            after_a,
            &format!("{a} connected to {b}"),
            |k| matches!(k, EventKind::PeerConnected { peer, .. } if *peer == pb),
        )
        .await?;
        self.wait_event(
            b,
            after_b,
            &format!("{b} connected to {a}"),
            |k| matches!(k, EventKind::PeerConnected { peer, .. } if *peer == pa),
        )
        .await?;
        Ok(())
    }

    /// Whether `a` lists `b` among its connected peers now.
    pub async fn connected(&self, a: &str, b: &str) -> Result<bool, HarnessError> {
        let pb = self.pubkey(b)?;
        let peers = self.client(a)?.list_peers().await?;
        Ok(peers.iter().any(|p| p.pubkey == pb))
    }

    /// Disconnect `a` from `b`.
    pub async fn disconnect(&mut self, a: &str, b: &str) -> Result<(), HarnessError> {
        let pb = self.pubkey(b)?;
        match self.client(a)?.disconnect_peer(&pb).await? {
            Ok(_) => Ok(()),
            Err(refusal) => Err(HarnessError::node(a, refusal)),
        }
    }
}
