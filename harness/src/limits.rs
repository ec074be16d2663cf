//! Every bound and deadline of the harness in one leaf: what a scenario file may ask for (so a
//! file that passes `check` cannot exhaust memory, overflow or run unbounded) and how long any
//! wait lasts. The format validates against these, the cluster waits by them, and
//! `scenarios/README.md` documents each next to its field; keeping them here means the format
//! needs nothing of the cluster to know them.

use std::time::Duration;

/// How long any one wait on the network lasts before it fails, naming what it awaited.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// What the faucet gives each node's wallet when the node is added.
pub const WALLET_FUNDS: u64 = 100_000_000_000;

/// How long `expect_unreachable` gives a dial it expects to fail: on loopback or a bridge a dial
/// that can succeed does so in milliseconds, and a cut path never answers (dlp-node's own dial
/// would give up only after its 10 s handshake timeout).
pub const UNREACHABLE_WITHIN: Duration = Duration::from_secs(3);

/// Largest scenario file read: 1 MiB. The shipped scenarios are a few KiB; a larger file is a
/// mistake, and would be read whole into memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Deepest nesting of arrays and inline tables in a scenario file (scenarios need 2; checked
/// before the TOML parser, whose recursion limit reports no position).
pub const MAX_NESTING: usize = 32;

/// Most parts of one dotted key or table header in a scenario file (`nodes.alice` has 2).
pub const MAX_KEY_PARTS: usize = 32;

/// Most nodes in one scenario (each is a running node with its own store). The explorer uses
/// at most 4; the network-size benchmark runs a star of 100 (benches/star/).
pub const MAX_NODES: usize = 128;

/// Most channels in one scenario, those listed plus those a topology makes (a mesh of `n` nodes
/// makes `n(n-1)/2`) and those `open_channel` steps open.
pub const MAX_CHANNELS: usize = 256;

/// Largest amount in shannons: a channel's funding, a payment, an expected channel balance. It
/// is what the faucet gives each node's wallet, so no channel (nor the sum of one node's
/// channels) can exceed it, and sums of amounts stay far from overflowing.
pub const MAX_AMOUNT: u64 = WALLET_FUNDS;

/// Largest `nth` of a `hold` or `backup_at`: no run sees a protocol step a million times; a
/// larger number is a typo that could only time out.
pub const MAX_NTH: u64 = 1_000_000;

/// Largest `fee_rate` of a node: a million millionths, a fee as large as what it forwards.
pub const MAX_FEE_RATE: u64 = 1_000_000;

/// Longest node name; a node name is also its directory in the run directory, so it is made of
/// ASCII letters, digits, `_` and `-` only.
pub const MAX_NAME_CHARS: usize = 32;

/// Most blocks one `mine` step asks for: the ledger's own limit per call.
pub const MAX_MINE_BLOCKS: u64 = dlp_chain::MAX_MINE_BLOCKS;

/// Most blocks `expect_resolution` mines while it waits for the nodes to resolve a channel: a
/// node that has not acted after this many blocks (each followed by quiescence) never will.
pub const MAX_RESOLVE_BLOCKS: u64 = 100;

/// Most paths one `expect_backup_files` lists.
pub const MAX_BACKUP_FILES: usize = 64;

/// Longest path in `expect_backup_files`, in bytes.
pub const MAX_BACKUP_PATH: usize = 256;

/// Largest `offset` and `len` of `damage_backup`, in bytes (1 GiB: past any backup a scenario
/// makes; an offset past the file's end fails when the step runs, naming the size).
pub const MAX_DAMAGE_BYTES: u64 = 1 << 30;

/// Largest `n` of a `crash_restore` kill point (`"rename:n"`): a restore makes a few dozen calls
/// of any one syscall; one that makes fewer than `n` is reported as finished.
pub const MAX_KILL_NTH: u32 = 100_000;

/// `backup_space_kb` of a node: 16 KiB (less than any backup: the first one fails) to 1 GiB
/// (the size-limited filesystem is memory).
pub const BACKUP_SPACE_KB: std::ops::RangeInclusive<u64> = 16..=1_048_576;

/// Longest `reason_contains` of a `restore` or `backup`, in bytes.
pub const MAX_REASON_BYTES: usize = 256;

/// Most entries a backup listing reads (`expect_backup_files`): a backup holds a few dozen.
pub const MAX_LISTED: usize = 10_000;
