//! The `dlp-node` binary's benchmarks (`bench-store`, `bench-payments`): modules of the
//! binary, built on what the library exports (storage, backup, restore, a running node) and
//! the node's RPC, like any other user of it. `tests/process/bench.rs` runs both end to end.

pub(crate) mod payments;
pub(crate) mod store;

use std::time::Duration;

/// Parse a size like `10M`, `100MB`, `1G`, `1GiB`, `4096` (binary units).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("size {text:?}: expected a number and a unit like 10M or 1G"))?;
    let mult = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        other => {
            return Err(format!(
                "size {text:?}: unknown unit {other:?} (use K, M or G)"
            ));
        }
    };
    Ok(n * mult)
}

/// `12.3 MiB` style.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `1.23 ms` / `4.56 s` style.
pub(crate) fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 1.0 {
        format!("{:.2} ms", secs * 1000.0)
    } else {
        format!("{secs:.2} s")
    }
}
