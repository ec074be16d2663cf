//! Protocol tests: in-process nodes with real stores, one shared ledger, real Noise
//! connections on loopback, addressed by name (`alice`, `bob`, ...). Every test runs once per
//! backend (`::rocksdb::` / `::sqlite::`). Assertions are on typed events, channel listings and
//! the ledger; waits have deadlines.

/// Instantiate `async fn name(backend: Backend)` test bodies once per backend.
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod rocksdb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(crate::store::Backend::Rocksdb).await }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(crate::store::Backend::Sqlite).await }
            )*
        }
    };
}

mod audit_log;
mod channels;
mod corpus;
mod limits;
mod lost_channel;
mod mutual_stale;
mod reestablish;
mod routing;
mod stale;
mod support;
