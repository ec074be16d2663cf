//! The node's limits a caller validates against before asking (the harness refuses a scenario
//! the node would refuse, with the scenario's line).

/// Longest step name `dev_hold` accepts, in bytes.
pub const MAX_STEP_LEN: usize = 128;
/// Most hops a payment route (an onion) may have, the payee included.
pub const MAX_HOPS: usize = 20;
/// Most routes a payment tries: after a hop fails, the payer routes again around the failed
/// channel, at most this many times in all.
pub const MAX_PAYMENT_ATTEMPTS: u32 = 8;
/// Most inputs one `dev_pin_order` pins (a pinned input is about 150 bytes of JSON, so a full
/// pin stays well inside the RPC's 2 MiB request body).
pub const MAX_PINNED_INPUTS: usize = 10_000;
