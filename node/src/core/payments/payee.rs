//! The payee: invoices it issues, and the final TLCs it fulfils (or refuses) against them.

use dlp_chain::{Hash32, Pubkey};

use super::{Invoice, MAX_ROUTE_HINTS, check_description, fail};
use crate::channel::Tlc;
use crate::channel_record::ChannelState;
use crate::core::Core;
use crate::wire::RemoveReason;

impl Core {
    /// Issue an invoice for `amount` (`new_invoice`), its preimage ours alone.
    pub(in crate::core) fn new_invoice(
        &mut self,
        amount: u64,
        description: Option<String>,
    ) -> Result<Invoice, String> {
        // Everything is checked before anything changes: an error reply means nothing was
        // persisted (not even the seeded-randomness counter).
        if amount == 0 {
            return Err("amount must be positive".into());
        }
        check_description(description.as_deref())?;
        let preimage = self.random32("invoice_preimage");
        let payment_hash = Hash32::digest(&preimage.0);
        let mut route_hints: Vec<Pubkey> = self
            .channels
            .iter()
            .filter(|(_, r)| r.state == ChannelState::ChannelReady)
            .filter_map(|(id, _)| self.peer_of(id))
            .collect();
        route_hints.sort();
        route_hints.dedup();
        route_hints.truncate(MAX_ROUTE_HINTS);
        let invoice = Invoice {
            payee: self.me,
            amount,
            payment_hash,
            description,
            route_hints,
            preimage: Some(preimage),
            paid: false,
        };
        self.payments.invoices.insert(payment_hash, invoice.clone());
        self.fx.dirty_invoices.insert(payment_hash);
        Ok(invoice)
    }

    /// The payee's answer to a final TLC the onion says is for us: fulfil it (keysend, or an
    /// unpaid invoice of at most its amount, then marked paid) or refuse it. `None` leaves the
    /// TLC pending (an invoice without its preimage).
    pub(super) fn receive_final(
        &mut self,
        tlc: &Tlc,
        amount: u64,
        keysend_preimage: Option<Hash32>,
    ) -> Option<RemoveReason> {
        if amount != tlc.amount {
            Some(fail(
                format!(
                    "final amount {amount} differs from the TLC's {}",
                    tlc.amount
                ),
                None,
            ))
        } else if tlc.expiry <= self.height {
            Some(fail(
                format!(
                    "TLC expires at {}, the chain is at {}",
                    tlc.expiry, self.height
                ),
                None,
            ))
        } else if let Some(preimage) = keysend_preimage {
            if Hash32::digest(&preimage.0) == tlc.payment_hash {
                Some(RemoveReason::Fulfill { preimage })
            } else {
                Some(fail("keysend preimage does not match".into(), None))
            }
        } else {
            match self.payments.invoices.get_mut(&tlc.payment_hash) {
                // A second payment of a paid invoice would pay twice: refuse it.
                Some(invoice) if invoice.paid => Some(fail("invoice already paid".into(), None)),
                Some(invoice) if invoice.amount <= tlc.amount => {
                    let preimage = invoice.preimage;
                    invoice.paid = true;
                    self.fx.dirty_invoices.insert(tlc.payment_hash);
                    preimage.map(|preimage| RemoveReason::Fulfill { preimage })
                }
                Some(invoice) => Some(fail(
                    format!(
                        "amount {} below the invoice's {}",
                        tlc.amount, invoice.amount
                    ),
                    None,
                )),
                None => Some(fail("unknown payment hash".into(), None)),
            }
        }
    }
}
