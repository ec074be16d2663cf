//! Payments: `pay` (and wait for its outcome), `send_payment` (start one) and
//! `expect_payment` (wait for a started one), with their route expectations: `route` (the
//! nodes the payment's last route went through, the payee last) and `attempts` (how many
//! routes the payer tried). A scenario about routing has to be able to say *which way* a
//! payment went, not only that it arrived: a payment that reached Dave through a Stale
//! channel's neighbour on its second try looks the same as one routed around it at once if
//! only the outcome is checked.

use dlp_node_api::{MAX_HOPS, MAX_PAYMENT_ATTEMPTS, PaymentStatus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ctx, Verb};
use crate::capability::Capability::TypedEvents;
use crate::cluster::PaymentOutcome;
use crate::error::HarnessError;
use crate::limits::MAX_AMOUNT;
use crate::scenario::{Check, Facts, VerbFacts};

/// Expected payment outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayExpect {
    #[default]
    Success,
    Failed,
    /// Either outcome (the explorer's payments: a Stale or offline route fails legitimately).
    Any,
}

/// Pay an invoice of `to` from `from`, over the route the payer finds on its graph.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pay {
    pub from: String,
    pub to: String,
    pub amount: u64,
    #[serde(default)]
    pub expect: PayExpect,
    /// With `expect = "failed"`: text the failure reason must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_contains: Option<String>,
    /// The nodes the payment's last route went through, the payee last: `["bob", "carol"]`
    /// is through bob to carol (1 to 20 names; not with `expect = "any"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Vec<String>>,
    /// How many routes the payer tried (1 to 8; not with `expect = "any"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

impl VerbFacts for Pay {
    fn facts(&self) -> Facts<'_> {
        let (from, to) = (self.from.as_str(), self.to.as_str());
        let route = self.route.iter().flatten().map(String::as_str);
        Facts::new([from, to].into_iter().chain(route), &[TypedEvents]).answering([from, to])
    }
    fn check(&self, _: &mut Check<'_>) -> Result<(), String> {
        check_amount("pay", self.amount)?;
        if self.from == self.to {
            return Err(format!("pay: {} cannot pay itself", self.from));
        }
        if self.expect == PayExpect::Success && self.reason_contains.is_some() {
            return Err("pay: reason_contains needs expect = \"failed\"".into());
        }
        check_route(
            "pay",
            self.expect,
            Some(&self.to),
            self.route.as_deref(),
            self.attempts,
        )
    }
}

impl Verb for Pay {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        let (from, to, amount) = (&self.from, &self.to, self.amount);
        if self.expect == PayExpect::Any {
            // Either outcome: start it (a refusal is an outcome too) and wait until no
            // message is in flight; a payment stuck behind a silent Stale peer stays so.
            cx.net.pay_and_forget(from, to, amount).await?;
            return cx.net.wait_quiescent().await;
        }
        let outcome = cx.net.pay(from, to, amount).await?;
        let (status, reason) = (outcome.status, outcome.reason.clone());
        let ok = match self.expect {
            PayExpect::Success => status == PaymentStatus::Success,
            PayExpect::Any => true,
            PayExpect::Failed => {
                status == PaymentStatus::Failed
                    && self.reason_contains.as_ref().is_none_or(|want| {
                        reason
                            .as_deref()
                            .unwrap_or_default()
                            .contains(want.as_str())
                    })
            }
        };
        if ok {
            let what = format!("payment {from} -> {to} of {amount}");
            judge_route(&what, &outcome, self.route.as_deref(), self.attempts)
                .map_err(HarnessError::Expectation)
        } else {
            Err(HarnessError::Expectation(format!(
                "payment {from} -> {to} of {amount}: expected {:?}{}, got {status}{}",
                self.expect,
                self.reason_contains
                    .as_ref()
                    .map(|r| format!(" mentioning {r:?}"))
                    .unwrap_or_default(),
                reason.map(|r| format!(" ({r})")).unwrap_or_default()
            )))
        }
    }
}

/// Start a payment without waiting for it; remembered as `name` (see `expect_payment`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendPayment {
    pub from: String,
    pub to: String,
    pub amount: u64,
    pub name: String,
}

impl VerbFacts for SendPayment {
    fn facts(&self) -> Facts<'_> {
        // One RPC call to start it; `expect_payment` waits.
        let (from, to) = (self.from.as_str(), self.to.as_str());
        Facts::new([from, to], &[]).answering([from, to])
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        cx.name_payment(&self.name, &self.from)?;
        check_amount("send_payment", self.amount)
    }
}

impl Verb for SendPayment {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        let hash = cx
            .net
            .start_payment(&self.from, &self.to, self.amount)
            .await?;
        cx.state
            .payments
            .insert(self.name.clone(), (self.from.clone(), hash));
        Ok(())
    }
}

/// Wait for a payment started with `send_payment` to end with `status`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectPayment {
    pub name: String,
    pub status: PayExpect,
    /// The nodes the payment's last route went through, the payee last (1 to 20 names; not
    /// with `status = "any"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Vec<String>>,
    /// How many routes the payer tried (1 to 8; not with `status = "any"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

impl VerbFacts for ExpectPayment {
    fn facts(&self) -> Facts<'_> {
        // The payer of the named payment is asked for its outcome.
        let route = self.route.iter().flatten().map(String::as_str);
        Facts::new(route, &[TypedEvents]).answering_payer_of(&self.name)
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        if cx.payer(&self.name).is_none() {
            return Err(format!(
                "expect_payment: no earlier send_payment named {:?}",
                self.name
            ));
        }
        check_route(
            "expect_payment",
            self.status,
            None,
            self.route.as_deref(),
            self.attempts,
        )
    }
}

impl Verb for ExpectPayment {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        let name = &self.name;
        let (payer, hash) = cx
            .state
            .payments
            .get(name)
            .cloned()
            .ok_or_else(|| HarnessError::Expectation(format!("no payment named {name}")))?;
        let outcome = cx.net.payment_outcome(&payer, hash).await?;
        let (got, reason) = (outcome.status, outcome.reason.clone());
        let (want, matched) = match self.status {
            PayExpect::Success => ("Success", got == PaymentStatus::Success),
            PayExpect::Failed => ("Failed", got == PaymentStatus::Failed),
            PayExpect::Any => ("Success or Failed", true),
        };
        if matched {
            judge_route(
                &format!("payment {name}"),
                &outcome,
                self.route.as_deref(),
                self.attempts,
            )
            .map_err(HarnessError::Expectation)
        } else {
            Err(HarnessError::Expectation(format!(
                "payment {name}: expected {want}, got {got}{}",
                reason.map(|r| format!(" ({r})")).unwrap_or_default()
            )))
        }
    }
}

/// A payment's amount: 1 to a wallet.
fn check_amount(verb: &str, amount: u64) -> Result<(), String> {
    if amount == 0 || amount > MAX_AMOUNT {
        return Err(format!(
            "{verb}: amount {amount} must be 1 to {MAX_AMOUNT} shannons (a node's wallet)"
        ));
    }
    Ok(())
}

/// What `check` refuses in a step's route expectation (node names are checked with every
/// other name of the step); `to` is the payee when the step names it.
fn check_route(
    verb: &str,
    expect: PayExpect,
    to: Option<&String>,
    route: Option<&[String]>,
    attempts: Option<u32>,
) -> Result<(), String> {
    if expect == PayExpect::Any && (route.is_some() || attempts.is_some()) {
        return Err(format!(
            "{verb}: route and attempts need an outcome to look at (expect \"success\" or \"failed\")"
        ));
    }
    if let Some(route) = route {
        if route.is_empty() || route.len() > MAX_HOPS {
            return Err(format!(
                "{verb}: route names {} nodes; a route has 1 to {MAX_HOPS} hops (the payee last)",
                route.len()
            ));
        }
        if let Some(to) = to
            && route.last() != Some(to)
        {
            return Err(format!(
                "{verb}: route must end with the payee {to:?} (it lists the nodes the payment \
                 went through, the payee last)"
            ));
        }
    }
    if let Some(n) = attempts
        && (n == 0 || n > MAX_PAYMENT_ATTEMPTS)
    {
        return Err(format!(
            "{verb}: attempts {n} must be 1 to {MAX_PAYMENT_ATTEMPTS} (the most routes a payment tries)"
        ));
    }
    Ok(())
}

/// Whether the outcome took the expected route with the expected number of attempts; the
/// mismatch, described, if not.
pub(super) fn judge_route(
    what: &str,
    outcome: &PaymentOutcome,
    route: Option<&[String]>,
    attempts: Option<u32>,
) -> Result<(), String> {
    if let Some(want) = route
        && outcome.route != want
    {
        return Err(format!(
            "{what}: expected the route {}, it went {} ({} attempt(s))",
            want.join(" -> "),
            if outcome.route.is_empty() {
                "nowhere".to_string()
            } else {
                outcome.route.join(" -> ")
            },
            outcome.attempts
        ));
    }
    if let Some(want) = attempts
        && outcome.attempts != u64::from(want)
    {
        return Err(format!(
            "{what}: expected {want} attempt(s), the payer tried {} (last route {})",
            outcome.attempts,
            outcome.route.join(" -> ")
        ));
    }
    Ok(())
}
