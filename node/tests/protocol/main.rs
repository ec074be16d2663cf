//! Protocol integration tests: in-process nodes with real stores, one shared ledger, real Noise
//! connections on loopback. Every test runs once per backend (`::rocksdb::` / `::sqlite::`).
//! Assertions are on typed events, channel listings and the ledger; waits have deadlines.

/// Instantiate `async fn name(backend: Backend)` test bodies once per backend.
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod rocksdb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(dlp_node::store::Backend::Rocksdb).await }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(dlp_node::store::Backend::Sqlite).await }
            )*
        }
    };
}

mod audit_log;
mod channels;
mod limits;
mod lost_channel;
mod mutual_stale;
mod process;
/// The storage tests' process helpers (spawned `dlp-node`, `--restore`), shared.
#[path = "../storage/support.rs"]
#[allow(dead_code)]
mod process_support;
mod reestablish;
mod routing;
mod stale;
mod support;
