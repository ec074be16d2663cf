//! Payments: an invoice of the payee, paid by the payer over whatever route it finds, and its
//! outcome (status, reason, the route by node names, attempts) as the payer reports it.

use dlp_chain::Hash32;
use dlp_node_api::{EventKind, PaymentStatus};
use serde_json::json;

use super::Network;
use crate::error::HarnessError;

impl Network {
    /// Start paying an invoice of `to` from `from`; returns the payment hash.
    pub async fn start_payment(
        &mut self,
        from: &str,
        to: &str,
        amount: u64,
    ) -> Result<Hash32, HarnessError> {
        let invoice = self.client(to)?.new_invoice(amount).await?;
        match self
            .client(from)?
            .send_payment(json!({ "invoice": invoice }))
            .await?
        {
            Ok(p) => Ok(p.payment_hash),
            Err(refusal) => Err(HarnessError::node(
                from,
                format!("send_payment refused: {refusal}"),
            )),
        }
    }

    /// Pay an invoice of `to` from `from` without waiting for the outcome; a refusal is an
    /// outcome too (the explorer's payments, which may legitimately fail or stay stuck).
    pub async fn pay_and_forget(
        &mut self,
        from: &str,
        to: &str,
        amount: u64,
    ) -> Result<(), HarnessError> {
        let invoice = self.client(to)?.new_invoice(amount).await?;
        let _ = self
            .client(from)?
            .send_payment(json!({ "invoice": invoice }))
            .await?;
        Ok(())
    }

    /// Wait for a payment's final status (`Success` or `Failed`), failure reason and route. Looks
    /// at the payer's current run (a restarted payer reports through `get_payment`).
    pub async fn payment_outcome(
        &mut self,
        from: &str,
        hash: Hash32,
    ) -> Result<PaymentOutcome, HarnessError> {
        let view = self.client(from)?.get_payment(&hash).await?;
        if view.status.is_final() {
            return Ok(self.outcome_of(view));
        }
        self.wait_event(from, 0, "the payment's outcome", |k| {
            matches!(k, EventKind::PaymentUpdated { payment_hash, status, .. }
                if *payment_hash == hash && status.is_final())
        })
        .await?;
        let view = self.client(from)?.get_payment(&hash).await?;
        Ok(self.outcome_of(view))
    }

    /// Pay an invoice of `to` from `from` and wait for the outcome (a refusal is a failure
    /// with no route).
    pub async fn pay(
        &mut self,
        from: &str,
        to: &str,
        amount: u64,
    ) -> Result<PaymentOutcome, HarnessError> {
        let invoice = self.client(to)?.new_invoice(amount).await?;
        let payment = match self
            .client(from)?
            .send_payment(json!({ "invoice": invoice }))
            .await?
        {
            Ok(p) => p,
            Err(refusal) => {
                return Ok(PaymentOutcome {
                    status: PaymentStatus::Failed,
                    reason: Some(refusal),
                    route: vec![],
                    attempts: 0,
                });
            }
        };
        if payment.status == PaymentStatus::Failed {
            return Ok(self.outcome_of(payment));
        }
        self.payment_outcome(from, payment.payment_hash).await
    }

    /// A payment's view with its route's node keys named.
    fn outcome_of(&self, view: crate::client::PaymentView) -> PaymentOutcome {
        let names: std::collections::BTreeMap<dlp_chain::Pubkey, String> = self
            .node_names()
            .into_iter()
            .filter_map(|n| Some((self.pubkey(&n).ok()?, n)))
            .collect();
        PaymentOutcome {
            status: view.status,
            reason: view.failed_error,
            route: view
                .route
                .iter()
                .map(|h| {
                    names
                        .get(&h.node)
                        .cloned()
                        .unwrap_or_else(|| h.node.to_string())
                })
                .collect(),
            attempts: view.attempts.unwrap_or(0),
        }
    }
}

/// How a payment ended, as its payer reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentOutcome {
    /// `Success` or `Failed`.
    pub status: PaymentStatus,
    pub reason: Option<String>,
    /// The nodes of its last route by name (a key for a node the network does not know), the
    /// payee last; empty when it was refused before any route.
    pub route: Vec<String>,
    /// Routes tried.
    pub attempts: u64,
}
