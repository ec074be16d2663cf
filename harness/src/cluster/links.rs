//! Who is connected to whom: connect (one dials the other, both see the connection),
//! disconnect, and partitions. A partition is cut by the driver below the nodes when it can (a
//! node that redials cannot escape it); otherwise the cluster cuts it at the connection level:
//! it drops the connection and refuses `connect` between the pair until `heal` (dlp-node never
//! redials by itself, so on loopback that is a real cut). The connection is dropped by a side
//! that answers: not a paused node (it answers nothing) nor one held at a step (its core
//! answers no command until released), so a partition can fall in the middle of a protocol
//! step.

use std::time::Duration;

use dlp_node::events::EventKind;

use super::Network;
use crate::error::HarnessError;

fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

impl Network {
    /// Cut `a` and `b` apart until [`heal`](Self::heal).
    pub async fn partition(&mut self, a: &str, b: &str) -> Result<(), HarnessError> {
        let (sa, sb) = (self.entry(a)?.spec.clone(), self.entry(b)?.spec.clone());
        let by_driver = self.driver.partition(&sa, &sb).await?;
        self.partitions.insert(pair(a, b), by_driver);
        if !by_driver && let Some((from, to)) = self.answering_side(a, b).await? {
            // Not connected is fine: the pair is cut either way.
            let peer = self.pubkey(to)?;
            let _ = self.client(from)?.disconnect_peer(&peer).await?;
        }
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

    /// Connect `a` to `b` (a dials the address b's driver says peers dial) and wait until both
    /// see the connection.
    pub async fn connect(&mut self, a: &str, b: &str) -> Result<(), HarnessError> {
        if self.partitions.get(&pair(a, b)) == Some(&false) {
            return Err(HarnessError::Setup(format!(
                "{a} and {b} are partitioned; heal them first"
            )));
        }
        let (after_a, after_b) = (self.last_seq(a)?, self.last_seq(b)?);
        let entry_b = self.entry(b)?;
        let advertised = &self.info(b)?.addresses;
        let address = entry_b
            .handle
            .as_ref()
            .ok_or_else(|| HarnessError::node(b, "is not running"))?
            .dial_address(advertised)
            .ok_or_else(|| HarnessError::node(b, "has no address"))?;
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

    /// Disconnect `a` from `b`.
    pub async fn disconnect(&mut self, a: &str, b: &str) -> Result<(), HarnessError> {
        let pb = self.pubkey(b)?;
        match self.client(a)?.disconnect_peer(&pb).await? {
            Ok(_) => Ok(()),
            Err(refusal) => Err(HarnessError::node(a, refusal)),
        }
    }
}
