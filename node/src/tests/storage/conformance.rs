//! The [`Store`] contract, checked point by point on every backend.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::store::{Backend, Store, StoreError, WriteBatch, open_store};

fn scratch(backend: Backend) -> (tempfile::TempDir, Box<dyn Store>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(backend, &dir.path().join("store")).expect("open");
    (dir, store)
}

fn keys_of(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<Vec<u8>> {
    entries.iter().map(|(k, _)| k.clone()).collect()
}

for_each_backend!(
    missing_key_is_none_and_deleting_it_is_a_no_op,
    put_overwrites_and_delete_removes,
    empty_key_is_rejected_empty_value_round_trips,
    batch_applies_in_order_and_last_write_wins,
    batch_with_an_invalid_op_applies_nothing,
    concurrent_readers_never_see_half_a_batch,
    prefix_scan_is_bytewise_ordered_and_exact_at_the_edges,
    scan_stops_when_the_visitor_breaks,
    writes_survive_close_and_reopen,
    large_values_round_trip,
    many_keys_scan_in_order_and_delete,
    a_second_open_of_a_rocksdb_store_is_refused_or_sqlite_shares,
);

fn missing_key_is_none_and_deleting_it_is_a_no_op(backend: Backend) {
    let (_dir, store) = scratch(backend);
    assert_eq!(store.get(b"absent").expect("get"), None);
    store
        .delete(b"absent")
        .expect("delete of a missing key is not an error");
    store.put(b"k", b"v").expect("put");
    store.delete(b"absent").expect("delete");
    assert_eq!(
        store.prefix_entries(&[]).expect("scan"),
        [(b"k".to_vec(), b"v".to_vec())]
    );
}

fn put_overwrites_and_delete_removes(backend: Backend) {
    let (_dir, store) = scratch(backend);
    store.put(b"k", b"one").expect("put");
    store.put(b"k", b"two").expect("overwrite");
    assert_eq!(store.get(b"k").expect("get").as_deref(), Some(&b"two"[..]));
    store.delete(b"k").expect("delete");
    assert_eq!(store.get(b"k").expect("get"), None);
}

fn empty_key_is_rejected_empty_value_round_trips(backend: Backend) {
    let (_dir, store) = scratch(backend);
    for result in [
        store.put(b"", b"v"),
        store.delete(b""),
        store.get(b"").map(drop),
        store.write(WriteBatch::new().put(b"".to_vec(), b"v".to_vec())),
    ] {
        assert!(
            matches!(result, Err(StoreError::EmptyKey { .. })),
            "{result:?}"
        );
    }
    store.put(b"k", b"").expect("empty value");
    assert_eq!(store.get(b"k").expect("get"), Some(Vec::new()));
    assert_eq!(
        store.prefix_entries(b"k").expect("scan"),
        [(b"k".to_vec(), Vec::new())]
    );
}

fn batch_applies_in_order_and_last_write_wins(backend: Backend) {
    let (_dir, store) = scratch(backend);
    store.put(b"gone", b"x").expect("put");
    let mut batch = WriteBatch::new();
    batch
        .put(b"a".to_vec(), b"1".to_vec())
        .put(b"a".to_vec(), b"2".to_vec())
        .put(b"b".to_vec(), b"1".to_vec())
        .delete(b"b".to_vec())
        .delete(b"gone".to_vec())
        .delete(b"c".to_vec())
        .put(b"c".to_vec(), b"3".to_vec());
    store.write(&batch).expect("batch");
    assert_eq!(
        store.prefix_entries(&[]).expect("scan"),
        [
            (b"a".to_vec(), b"2".to_vec()),
            (b"c".to_vec(), b"3".to_vec())
        ]
    );
}

fn batch_with_an_invalid_op_applies_nothing(backend: Backend) {
    let (_dir, store) = scratch(backend);
    store.put(b"keep", b"old").expect("put");
    let mut batch = WriteBatch::new();
    batch
        .put(b"keep".to_vec(), b"new".to_vec())
        .put(b"added".to_vec(), b"x".to_vec())
        .put(Vec::new(), b"invalid".to_vec());
    assert!(store.write(&batch).is_err());
    assert_eq!(
        store.prefix_entries(&[]).expect("scan"),
        [(b"keep".to_vec(), b"old".to_vec())]
    );
}

/// A writer rewrites ten keys to the same generation in each batch while readers scan; every
/// scan must see one generation across all ten keys.
fn concurrent_readers_never_see_half_a_batch(backend: Backend) {
    let (_dir, store) = scratch(backend);
    let store: Arc<dyn Store> = Arc::from(store);
    let write_gen = |generation: u32| {
        let mut batch = WriteBatch::new();
        for i in 0..10u8 {
            batch.put(vec![b'g', i], generation.to_be_bytes().to_vec());
        }
        batch
    };
    store.write(&write_gen(0)).expect("initial batch");
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let store = store.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            for generation in 1..=200u32 {
                store.write(&write_gen(generation)).expect("batch");
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut scans = 0u32;
    // Bounded: the writer finishes 200 batches; stop scanning when it is done.
    while !done.load(Ordering::SeqCst) || scans == 0 {
        let entries = store.prefix_entries(b"g").expect("scan");
        assert_eq!(entries.len(), 10);
        let first = &entries[0].1;
        assert!(
            entries.iter().all(|(_, v)| v == first),
            "scan {scans} saw a partial batch: {entries:?}"
        );
        scans += 1;
    }
    writer.join().expect("writer");
    assert!(scans > 0);
}

fn prefix_scan_is_bytewise_ordered_and_exact_at_the_edges(backend: Backend) {
    let (_dir, store) = scratch(backend);
    let keys: Vec<Vec<u8>> = vec![
        vec![0x00],
        vec![0x00, 0x00],
        vec![0x01],
        vec![0x01, 0x00],
        vec![0x01, 0xff],
        vec![0x01, 0xff, 0xff],
        vec![0x02],
        vec![0x7f],
        vec![0x80],
        vec![0xff],
        vec![0xff, 0x00],
        vec![0xff, 0xff],
        b"ab".to_vec(),
        b"abc".to_vec(),
        b"abd".to_vec(),
        b"ac".to_vec(),
    ];
    // Insert in reverse so order cannot come from insertion.
    for k in keys.iter().rev() {
        store.put(k, k).expect("put");
    }
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        keys_of(&store.prefix_entries(&[]).expect("all")),
        sorted,
        "empty prefix = all, memcmp order"
    );
    assert_eq!(
        keys_of(&store.prefix_entries(&[0x01]).expect("scan")),
        [
            vec![0x01],
            vec![0x01, 0x00],
            vec![0x01, 0xff],
            vec![0x01, 0xff, 0xff]
        ],
        "prefix includes the prefix itself and stops before 0x02"
    );
    assert_eq!(
        keys_of(&store.prefix_entries(&[0x01, 0xff]).expect("scan")),
        [vec![0x01, 0xff], vec![0x01, 0xff, 0xff]],
        "a prefix ending in 0xff does not spill into 0x02"
    );
    assert_eq!(
        keys_of(&store.prefix_entries(&[0xff]).expect("scan")),
        [vec![0xff], vec![0xff, 0x00], vec![0xff, 0xff]],
        "an all-0xff prefix has no upper bound and still stops at the end"
    );
    assert_eq!(
        keys_of(&store.prefix_entries(&[0xff, 0xff]).expect("scan")),
        [vec![0xff, 0xff]]
    );
    assert_eq!(
        keys_of(&store.prefix_entries(b"ab").expect("scan")),
        [b"ab".to_vec(), b"abc".to_vec(), b"abd".to_vec()]
    );
    assert!(store.prefix_entries(&[0x03]).expect("scan").is_empty());
    assert!(
        store.prefix_entries(b"abcd").expect("scan").is_empty(),
        "longer than any key"
    );
}

fn scan_stops_when_the_visitor_breaks(backend: Backend) {
    let (_dir, store) = scratch(backend);
    for i in 0..10u8 {
        store.put(&[b'p', i], &[i]).expect("put");
    }
    let mut seen = Vec::new();
    store
        .scan_prefix(b"p", &mut |k, _| {
            seen.push(k.to_vec());
            if seen.len() == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .expect("scan");
    assert_eq!(seen, [vec![b'p', 0], vec![b'p', 1], vec![b'p', 2]]);
}

fn writes_survive_close_and_reopen(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    {
        let store = open_store(backend, &path).expect("open");
        store.put(b"put", b"1").expect("put");
        store.put(b"deleted", b"1").expect("put");
        store.delete(b"deleted").expect("delete");
        let mut batch = WriteBatch::new();
        batch.put(b"batch".to_vec(), b"2".to_vec());
        store.write(&batch).expect("batch");
    }
    let store = open_store(backend, &path).expect("reopen");
    assert_eq!(
        store.prefix_entries(&[]).expect("scan"),
        [
            (b"batch".to_vec(), b"2".to_vec()),
            (b"put".to_vec(), b"1".to_vec())
        ]
    );
    assert_eq!(store.backend(), backend);
}

fn large_values_round_trip(backend: Backend) {
    let (_dir, store) = scratch(backend);
    let big: Vec<u8> = (0..16 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    store.put(b"big", &big).expect("put 16 MiB");
    assert_eq!(store.get(b"big").expect("get").as_deref(), Some(&big[..]));
    let mut batch = WriteBatch::new();
    batch.put(b"big2".to_vec(), big.clone());
    store.write(&batch).expect("batch 16 MiB");
    assert_eq!(store.prefix_entries(b"big2").expect("scan")[0].1, big);
}

fn many_keys_scan_in_order_and_delete(backend: Backend) {
    let (_dir, store) = scratch(backend);
    const N: u32 = 20_000;
    for chunk in (0..N).collect::<Vec<_>>().chunks(2_000) {
        let mut batch = WriteBatch::new();
        for &i in chunk {
            // Little-endian keys: insertion order differs from key order.
            batch.put(
                [b"k".as_slice(), &i.to_le_bytes()].concat(),
                i.to_be_bytes().to_vec(),
            );
        }
        store.write(&batch).expect("batch");
    }
    let entries = store.prefix_entries(b"k").expect("scan");
    assert_eq!(entries.len(), N as usize);
    assert!(
        entries.windows(2).all(|w| w[0].0 < w[1].0),
        "strictly ascending"
    );
    let mut batch = WriteBatch::new();
    for i in (0..N).filter(|i| i % 2 == 0) {
        batch.delete([b"k".as_slice(), &i.to_le_bytes()].concat());
    }
    store.write(&batch).expect("delete half");
    let left = store.prefix_entries(b"k").expect("scan");
    assert_eq!(left.len(), (N / 2) as usize);
    assert!(
        left.iter()
            .all(|(_, v)| u32::from_be_bytes(v[..4].try_into().expect("4 bytes")) % 2 == 1)
    );
}

/// RocksDB holds its own LOCK: a second open of a live store must fail rather than corrupt it.
/// SQLite allows several connections by design; they must see each other's committed writes.
fn a_second_open_of_a_rocksdb_store_is_refused_or_sqlite_shares(backend: Backend) {
    let (dir, store) = scratch(backend);
    store.put(b"k", b"v").expect("put");
    let second = open_store(backend, &dir.path().join("store"));
    match backend {
        Backend::Rocksdb => {
            let err = second.expect_err("RocksDB must refuse a second open");
            assert!(err.to_string().contains("store"), "{err}");
        }
        Backend::Sqlite => {
            let second = second.expect("SQLite allows a second connection");
            assert_eq!(second.get(b"k").expect("get").as_deref(), Some(&b"v"[..]));
        }
    }
}
