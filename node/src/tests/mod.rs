//! dlp-node's tests of its insides, compiled into the library's own test binary (one
//! RocksDB-linked executable instead of one per suite; each links ~300 MB): the storage layer
//! (`storage/`: the store contract on both engines, backups, restore) and the protocol
//! (`protocol/`: in-process nodes with real stores, one shared ledger, real Noise connections
//! on loopback). What drives the `dlp-node` binary as a process is in `tests/process/`, through
//! the library's exports only.

mod protocol;
mod storage;
