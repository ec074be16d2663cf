//! The channels a scenario has at each point of its validation: `[[channels]]` (and a
//! topology's) first, then each `open_channel` step in order. One place checks a channel the
//! same way wherever it is declared: its name is new, it does not connect a node to itself,
//! and its opener's channels together fit in one wallet.

use std::collections::{BTreeMap, BTreeSet};

use crate::limits::{MAX_AMOUNT, MAX_CHANNELS};

/// The channels known so far (`[[channels]]`, then each `open_channel` step in order) and what
/// each node funds with them in all: every node opens its channels from one faucet payment, so
/// together they cannot pass [`MAX_AMOUNT`].
#[derive(Debug, Default)]
pub struct Channels {
    pub names: BTreeSet<String>,
    funded: BTreeMap<String, u64>,
}

impl Channels {
    /// Add a channel (`Err` is the message after "channel ").
    pub(super) fn add(
        &mut self,
        name: &str,
        from: &str,
        to: &str,
        amount: u64,
    ) -> Result<(), String> {
        if self.names.len() >= MAX_CHANNELS {
            return Err(format!(
                "{name:?}: a scenario has at most {MAX_CHANNELS} channels, with those of \
                 [[channels]] and every open_channel step before it"
            ));
        }
        if from == to {
            return Err(format!("{name:?} connects {from} to itself"));
        }
        if amount == 0 || amount > MAX_AMOUNT {
            return Err(format!(
                "{name:?}: amount {amount} must be 1 to {MAX_AMOUNT} shannons (a node's wallet)"
            ));
        }
        let total = self.funded.entry(from.to_string()).or_default();
        *total = total.saturating_add(amount);
        if *total > MAX_AMOUNT {
            return Err(format!(
                "{name:?}: {from} opens {} shannons of channels with it, {} before it, more than \
                 its wallet of {MAX_AMOUNT}",
                *total,
                *total - amount
            ));
        }
        if !self.names.insert(name.to_string()) {
            return Err(format!("name {name:?} used twice"));
        }
        Ok(())
    }
}
