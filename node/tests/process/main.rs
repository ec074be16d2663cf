//! The `dlp-node` binary driven as a process, through the library's exports and the API crate
//! only: the CLI (help, layout, signals, `--restore`), restores killed at every system call
//! (`strace`), the exit code of a fail-stop and the exposure warning, and two node processes
//! paying, backing up and restoring over RPC. One binary (each RocksDB-linked test executable
//! is ~300 MB); the rest of dlp-node's tests are the library's own (`src/tests/`).

/// Instantiate `fn name(backend: Backend)` test bodies once per backend.
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod rocksdb {
            $( #[test] fn $name() { super::$name(dlp_node_api::Backend::Rocksdb) } )*
        }
        mod sqlite {
            $( #[test] fn $name() { super::$name(dlp_node_api::Backend::Sqlite) } )*
        }
    };
}

mod bench;
mod cli;
mod crash;
mod limits;
mod migrate;
mod process;
/// Scratch nodes, channel records and backup damage, shared with the library's storage tests.
#[path = "../../src/tests/storage/scratch.rs"]
#[allow(dead_code)]
mod scratch;
mod support;
