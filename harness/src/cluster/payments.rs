//! Payments: an invoice of the payee, paid by the payer (directly or through a hop), and its
//! outcome as the payer reports it.

use dlp_chain::Hash32;
use dlp_node::events::EventKind;
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

    /// Wait for a payment's final status ("Success"/"Failed") and failure reason. Looks at the
    /// payer's current run (a restarted payer reports through `get_payment`).
    pub async fn payment_outcome(
        &mut self,
        from: &str,
        hash: Hash32,
    ) -> Result<(String, Option<String>), HarnessError> {
        let view = self.client(from)?.get_payment(&hash).await?;
        if view.status == "Success" || view.status == "Failed" {
            return Ok((view.status, view.failed_error));
        }
        self.wait_event(from, 0, "the payment's outcome", |k| {
            matches!(k, EventKind::PaymentUpdated { payment_hash, status, .. }
                if *payment_hash == hash && (status == "Success" || status == "Failed"))
        })
        .await?;
        let view = self.client(from)?.get_payment(&hash).await?;
        Ok((view.status, view.failed_error))
    }

    /// Pay an invoice of `to` from `from` and wait; returns the final status
    /// ("Success"/"Failed") and the failure reason.
    pub async fn pay(
        &mut self,
        from: &str,
        to: &str,
        amount: u64,
    ) -> Result<(String, Option<String>), HarnessError> {
        let invoice = self.client(to)?.new_invoice(amount).await?;
        let payment = match self
            .client(from)?
            .send_payment(json!({ "invoice": invoice }))
            .await?
        {
            Ok(p) => p,
            Err(refusal) => return Ok(("Failed".into(), Some(refusal))),
        };
        if payment.status == "Failed" {
            return Ok((payment.status, payment.failed_error));
        }
        self.payment_outcome(from, payment.payment_hash).await
    }
}
