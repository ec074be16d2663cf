//! A payment's status, as `send_payment` / `get_payment` answer and `PaymentUpdated` events
//! report it (Fiber's names).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Fiber's payment statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaymentStatus {
    Created,
    Inflight,
    Success,
    Failed,
}

impl PaymentStatus {
    /// Whether the payment is over (it will not change again).
    pub fn is_final(self) -> bool {
        matches!(self, PaymentStatus::Success | PaymentStatus::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Created => "Created",
            PaymentStatus::Inflight => "Inflight",
            PaymentStatus::Success => "Success",
            PaymentStatus::Failed => "Failed",
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
