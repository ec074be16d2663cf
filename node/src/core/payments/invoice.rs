//! The invoice: what a payee issues and a payer pays, and its shareable address (`dlpinv1` +
//! hex of the public fields). Every invoice is stored and every backup carries it, so its free
//! text and lists have limits, checked before anything changes.

use dlp_chain::{Hash32, Pubkey, hex_u64};
use serde::{Deserialize, Serialize};

/// Prefix of invoice addresses.
pub(crate) const INVOICE_ADDRESS_PREFIX: &str = "dlpinv1";

/// Longest invoice description, in bytes of UTF-8: BOLT 11's limit (its `d` field's 10-bit
/// length counts 5-bit groups: 1023 * 5 / 8 = 639 bytes). Every invoice is stored and every
/// backup carries it, so free text must be small.
pub(crate) const MAX_DESCRIPTION_BYTES: usize = 639;
/// Most route hints an invoice carries (the payee's channel peers, first in key order). A
/// payment keeps them as route candidates in its record.
pub(crate) const MAX_ROUTE_HINTS: usize = 16;
/// Longest invoice address `send_payment` accepts, in bytes. The largest invoice this node can
/// issue (a description of 639 control characters, each escaped to six bytes of JSON, and
/// [`MAX_ROUTE_HINTS`] hints) is about 10.7 KiB; a unit test keeps it under this limit.
pub(crate) const MAX_INVOICE_ADDRESS_LEN: usize = 16 * 1024;

/// Refuse a description over [`MAX_DESCRIPTION_BYTES`] (without echoing it).
pub(crate) fn check_description(description: Option<&str>) -> Result<(), String> {
    match description {
        Some(text) if text.len() > MAX_DESCRIPTION_BYTES => Err(format!(
            "description is {} bytes; the limit is {MAX_DESCRIPTION_BYTES}",
            text.len()
        )),
        _ => Ok(()),
    }
}

/// An invoice we issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Invoice {
    pub(crate) payee: Pubkey,
    #[serde(with = "hex_u64")]
    pub(crate) amount: u64,
    pub(crate) payment_hash: Hash32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// Peers the payee has channels with (single-hop route hints).
    #[serde(default)]
    pub(crate) route_hints: Vec<Pubkey>,
    /// Only in our own records, never in the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) preimage: Option<Hash32>,
    #[serde(default)]
    pub(crate) paid: bool,
}

impl Invoice {
    /// The shareable address: prefix + hex of the public fields.
    pub(crate) fn address(&self) -> String {
        let public = Invoice {
            preimage: None,
            paid: false,
            ..self.clone()
        };
        format!(
            "{INVOICE_ADDRESS_PREFIX}{}",
            hex::encode(serde_json::to_vec(&public).unwrap_or_default())
        )
    }

    /// Parse an address.
    pub(crate) fn parse_address(address: &str) -> Result<Self, String> {
        if address.len() > MAX_INVOICE_ADDRESS_LEN {
            return Err(format!(
                "invoice address is {} bytes; the limit is {MAX_INVOICE_ADDRESS_LEN}",
                address.len()
            ));
        }
        let body = address
            .strip_prefix(INVOICE_ADDRESS_PREFIX)
            .ok_or_else(|| format!("invoice must start with {INVOICE_ADDRESS_PREFIX}"))?;
        let bytes = hex::decode(body).map_err(|e| format!("invoice is not hex: {e}"))?;
        let invoice: Invoice =
            serde_json::from_slice(&bytes).map_err(|e| format!("malformed invoice: {e}"))?;
        if invoice.preimage.is_some() {
            return Err("an invoice address must not carry a preimage".into());
        }
        check_description(invoice.description.as_deref())?;
        if invoice.route_hints.len() > MAX_ROUTE_HINTS {
            return Err(format!(
                "invoice carries {} route hints; the limit is {MAX_ROUTE_HINTS}",
                invoice.route_hints.len()
            ));
        }
        Ok(invoice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice(description: Option<String>, hints: usize) -> Invoice {
        Invoice {
            payee: Pubkey([2; 33]),
            amount: u64::MAX,
            payment_hash: Hash32([0xff; 32]),
            description,
            route_hints: (0..hints)
                .map(|i| Pubkey([u8::try_from(i % 256).unwrap_or(0); 33]))
                .collect(),
            preimage: None,
            paid: false,
        }
    }

    #[test]
    fn the_largest_invoice_we_issue_fits_the_address_limit_and_parses_back() {
        // Control characters are escaped to six bytes of JSON each: the worst case.
        let worst = invoice(Some("\u{1}".repeat(MAX_DESCRIPTION_BYTES)), MAX_ROUTE_HINTS);
        let address = worst.address();
        assert!(
            address.len() <= MAX_INVOICE_ADDRESS_LEN,
            "{} > {MAX_INVOICE_ADDRESS_LEN}",
            address.len()
        );
        assert_eq!(Invoice::parse_address(&address), Ok(worst));
    }

    #[test]
    fn oversize_invoices_are_refused_without_echoing_them() {
        let long = invoice(Some("x".repeat(MAX_DESCRIPTION_BYTES + 1)), 0);
        let err = Invoice::parse_address(&long.address()).expect_err("long description");
        assert!(err.contains("640 bytes"), "{err}");
        let hints = invoice(None, MAX_ROUTE_HINTS + 1);
        assert!(Invoice::parse_address(&hints.address()).is_err());
        let huge = format!(
            "{INVOICE_ADDRESS_PREFIX}{}",
            "0".repeat(MAX_INVOICE_ADDRESS_LEN)
        );
        let err = Invoice::parse_address(&huge).expect_err("huge address");
        assert!(err.len() < 100, "the error echoes the input: {err}");
        assert!(
            check_description(Some(&"é".repeat(320))).is_err(),
            "640 bytes"
        );
        assert!(check_description(Some(&"x".repeat(MAX_DESCRIPTION_BYTES))).is_ok());
    }
}
