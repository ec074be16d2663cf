//! dlp-node-api: the typed contract between dlp-node and whoever drives or reads it (the
//! harness). What a node says ([`NodeEvent`], [`ChannelInfo`], [`PeerInfo`], payment
//! statuses), what it is asked ([`StepSpec`], its config enums), the names it uses
//! ([`MessageName`], file names, the ready line, peer addresses) and the limits a caller
//! validates against. One definition each: dlp-node uses these types itself.
//!
//! No storage engine, RPC server or async runtime: the harness's checks, model and report
//! link this and dlp-chain's types, never RocksDB.

pub mod address;
pub mod channel;
pub mod config;
pub mod describe;
pub mod events;
pub mod files;
pub mod info;
pub mod limits;
pub mod messages;
pub mod order;
pub mod payments;
pub mod steps;

pub use address::{PeerAddressError, format_peer_address, parse_peer_address};
pub use channel::{ChannelInfo, ChannelState, PeerInfo, TlcInfo, flags};
pub use config::{
    AuditPolicy, Backend, MutualStale, OnAuditFailure, OnForceCloseRequest, RpcModule,
};
pub use describe::{Naming, ShortIds};
pub use events::{AuditEvent, AuditOutcome, EventKind, NodeEvent, TxKindName};
pub use files::{
    BACKUP_MANIFEST_FILE, EVENTS_FILE_NAME, READY_LINE_PREFIX, ROCKSDB_BACKUP_DIR_NAME,
    SQLITE_FILE_NAME, ready_line_addr,
};
pub use info::NodeInfo;
pub use limits::{MAX_HOPS, MAX_PAYMENT_ATTEMPTS, MAX_PINNED_INPUTS, MAX_STEP_LEN};
pub use messages::{BadProtocolStep, Direction, MessageName, ProtocolStep};
pub use order::{
    InputSource, OrderDivergence, OrderStatus, OrderedCommand, OrderedInput, PinOrder,
};
pub use payments::PaymentStatus;
pub use steps::{BadStep, StepAction, StepSpec};

/// Milliseconds since the Unix epoch (0 if the clock is before it): the unit of every
/// timestamp in events, backups' names and run records.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events as dlp-node wrote them before this crate existed (one line per kind and variant,
    /// from a real `events.jsonl` of scenario runs on main; the `gossip_refused` line and the
    /// `SpliceInit` message, which no scenario produces, written in the same format).
    const EVENTS_FROM_MAIN: &str = include_str!("../tests/fixtures/events-main.jsonl");

    #[test]
    fn events_written_by_main_parse_and_serialise_byte_identically() {
        let mut kinds = std::collections::BTreeSet::new();
        for line in EVENTS_FROM_MAIN.lines() {
            let event: NodeEvent =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let again = serde_json::to_string(&event).expect("json");
            assert_eq!(again, line);
            let value: serde_json::Value = serde_json::from_str(line).expect("json");
            kinds.insert(value["type"].as_str().unwrap_or_default().to_string());
        }
        let every = [
            "audit_failed",
            "audit_passed",
            "backup_written",
            "error",
            "gossip_refused",
            "graph_channel_added",
            "graph_channel_removed",
            "graph_channel_updated",
            "held",
            "message_ignored",
            "message_received",
            "message_sent",
            "payment_updated",
            "peer_connected",
            "peer_disconnected",
            "persisted",
            "recovered_from_unknown_channel",
            "released",
            "started",
            "state_changed",
            "tx_broadcast",
            "unknown_channel_reestablish",
        ];
        assert_eq!(kinds.iter().map(String::as_str).collect::<Vec<_>>(), every);
    }
}
