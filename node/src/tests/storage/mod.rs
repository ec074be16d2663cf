//! Storage-layer tests, one module per concern. Every behavioural test runs once per backend;
//! names end in `::rocksdb::<test>` or `::sqlite::<test>`.

/// Instantiate `fn name(backend: Backend)` test bodies once per backend.
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod rocksdb {
            $( #[test] fn $name() { super::$name(crate::store::Backend::Rocksdb) } )*
        }
        mod sqlite {
            $( #[test] fn $name() { super::$name(crate::store::Backend::Sqlite) } )*
        }
    };
}

mod backup;
mod conformance;
mod restore;
/// Shared with the process tests, which use only part of it.
#[allow(dead_code)]
pub(super) mod scratch;
