//! The one deadline loop. Every wait in the harness (an event, a channel state, a penalty on
//! the ledger, quiescence, a balance, a wallet change) runs on a [`Wait`] from
//! [`Network::wait_until`]: it looks at the cluster, and when the answer is not there yet it
//! calls [`Network::not_yet`] with what it saw and what to idle on until the next look (a
//! node's next event, the ledger's next event). No sleeps: idling is a long poll that returns as
//! soon as something happens. At the deadline the error names what was awaited, what was seen
//! last, and each node's recent events. A wait that idles on a paused node's events fails at
//! once ([`HarnessError::Paused`], naming the node and what was awaited): it could only end
//! after a `resume`, which cannot come while the wait runs.
//!
//! (A closure-taking loop would read shorter, but a probe borrowing the network across an
//! `.await` makes every caller's future lose `Send`, which the sweep's parallel runs need.)

use std::time::{Duration, Instant};

use crate::error::HarnessError;

use super::Network;
use crate::limits::DEADLINE;

/// Longest single idle: the wait looks again at least this often.
const IDLE_SLICE: Duration = Duration::from_millis(500);
/// Events of each node shown with a timeout.
const RECENT_EVENTS: usize = 12;

/// A wait in progress: what is awaited, and until when.
#[derive(Debug, Clone)]
pub struct Wait {
    what: String,
    deadline: Instant,
}

impl Wait {
    /// Whether the deadline has passed (the next [`Network::not_yet`] fails).
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// What to idle on between two looks.
#[derive(Debug, Clone)]
pub enum Idle {
    /// The next event of this node (its events are fetched meanwhile).
    NodeEvents(String),
    /// The next transaction or block on the ledger.
    Ledger,
    /// Nothing: look again at once (the probe saw things move while it looked).
    Immediately,
}

impl Network {
    /// Begin waiting for `what` (named in the error if the deadline passes).
    pub fn wait_until(&self, what: impl Into<String>) -> Wait {
        Wait {
            what: what.into(),
            deadline: Instant::now() + DEADLINE,
        }
    }

    /// Begin a bounded look: "does `what` happen within `within`?" Its end is an answer, not
    /// an error: idle with [`idle_within`](Self::idle_within), which says when time is up.
    pub fn wait_within(&self, what: impl Into<String>, within: Duration) -> Wait {
        Wait {
            what: what.into(),
            deadline: Instant::now() + within.min(DEADLINE),
        }
    }

    /// Idle on `idle` for at most what is left of a bounded `wait`; `false` once nothing is
    /// left (then the awaited thing did not happen in time). A paused node's events fail at
    /// once, as in [`not_yet`](Self::not_yet).
    pub async fn idle_within(&mut self, wait: &Wait, idle: Idle) -> Result<bool, HarnessError> {
        if let Idle::NodeEvents(node) = &idle {
            self.refuse_paused(node, &format!("waiting for {}", wait.what))?;
        }
        let left = wait.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        self.idle(&idle, left.min(IDLE_SLICE)).await?;
        Ok(true)
    }

    /// The awaited thing is not there yet: fail if `wait`'s deadline has passed (naming what
    /// was awaited, `seen`, and each node's recent events), or at once if `idle` is a paused
    /// node's events; else idle on `idle`.
    pub async fn not_yet(
        &mut self,
        wait: &Wait,
        seen: Option<String>,
        idle: Idle,
    ) -> Result<(), HarnessError> {
        if let Idle::NodeEvents(node) = &idle {
            self.refuse_paused(node, &format!("waiting for {}", wait.what))?;
        }
        let left = wait.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let what = match seen {
                Some(seen) => format!("{} (last seen: {seen})", wait.what),
                None => wait.what.clone(),
            };
            return Err(self.timeout(&what));
        }
        self.idle(&idle, left.min(IDLE_SLICE)).await
    }

    /// Wait at most `wait` for the next thing `idle` names.
    async fn idle(&mut self, idle: &Idle, wait: Duration) -> Result<(), HarnessError> {
        match idle {
            Idle::NodeEvents(node) => {
                let after = self.last_seq(node)?;
                self.poll_after(node, after, wait).await.map(drop)
            }
            Idle::Ledger => {
                let events = self
                    .chain
                    .events_after(self.ledger_cursor, wait)
                    .await
                    .map_err(|e| HarnessError::Chain(e.to_string()))?;
                if let Some(last) = events.last() {
                    self.ledger_cursor = last.seq();
                }
                Ok(())
            }
            Idle::Immediately => Ok(()),
        }
    }

    /// The error of a wait that ran out: what, and each node's recent events.
    pub(crate) fn timeout(&self, what: &str) -> HarnessError {
        HarnessError::Timeout {
            what: what.to_string(),
            seconds: DEADLINE.as_secs(),
            seen: self.recent_events(RECENT_EVENTS),
        }
    }
}
