//! Storage-layer integration tests: one binary (RocksDB-linked test binaries are ~300 MB each),
//! one module per concern. Every behavioural test runs once per backend; names end in
//! `::rocksdb::<test>` or `::sqlite::<test>`.

/// Instantiate `fn name(backend: Backend)` test bodies once per backend.
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod rocksdb {
            $( #[test] fn $name() { super::$name(dlp_node::store::Backend::Rocksdb) } )*
        }
        mod sqlite {
            $( #[test] fn $name() { super::$name(dlp_node::store::Backend::Sqlite) } )*
        }
    };
}

mod backup;
mod cli;
mod conformance;
mod crash;
mod restore;
mod support;
