//! Names the node writes and prints that its callers read: files inside a base directory or a
//! backup, and the line the `dlp-node` binary prints once it serves RPC.

/// `<base>/events.jsonl`: every event of the node, one JSON object a line
/// ([`NodeEvent`](crate::NodeEvent)), appended across restarts.
pub const EVENTS_FILE_NAME: &str = "events.jsonl";
/// A backup's manifest (its format, files, sizes and digests), inside the backup directory.
pub const BACKUP_MANIFEST_FILE: &str = "dlp-backup.json";
/// Directory name, inside a backup, of a RocksDB checkpoint.
pub const ROCKSDB_BACKUP_DIR_NAME: &str = "db";
/// The SQLite database file, in a store directory and inside a backup.
pub const SQLITE_FILE_NAME: &str = "data.sqlite";
/// What `dlp-node` prints on stdout once it is ready, followed by the RPC address
/// (`rpc listening on 127.0.0.1:8227`).
pub const READY_LINE_PREFIX: &str = "rpc listening on ";

/// The RPC address in a ready line, if `line` is one.
pub fn ready_line_addr(line: &str) -> Option<&str> {
    line.trim_end().strip_prefix(READY_LINE_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_names_the_rpc_address() {
        let line = format!("{READY_LINE_PREFIX}127.0.0.1:8227\n");
        assert_eq!(ready_line_addr(&line), Some("127.0.0.1:8227"));
        assert_eq!(ready_line_addr("listening"), None);
    }
}
