//! Named fault-injection points, so tests can make a real restore fail at a chosen spot (the
//! middle of a copy, the swap, the key write) and check that nothing was lost.
//!
//! Off unless configured. The CLI reads `DLP_NODE_FAILPOINTS`, a comma-separated list of
//! `name=N` meaning "fail the N-th time `name` is reached" (1-based), and warns loudly on stderr
//! whenever any are set. Library callers pass [`Failpoints`] in explicitly.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;

/// Environment variable read by the CLI.
pub const FAILPOINTS_ENV: &str = "DLP_NODE_FAILPOINTS";

/// A set of armed failpoints and their hit counters.
#[derive(Debug, Default)]
pub struct Failpoints {
    armed: HashMap<String, u64>,
    hits: Mutex<HashMap<String, u64>>,
}

impl Failpoints {
    /// No failpoints: every check passes.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parse `name=N[,name=N...]`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut armed = HashMap::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, nth) = part
                .split_once('=')
                .ok_or_else(|| format!("failpoint {part:?}: expected name=N"))?;
            let nth: u64 = nth
                .trim()
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("failpoint {part:?}: N must be a positive integer"))?;
            armed.insert(name.trim().to_string(), nth);
        }
        Ok(Self {
            armed,
            hits: Mutex::default(),
        })
    }

    /// Arm `name` to fail on its `nth` hit.
    pub fn arm(mut self, name: &str, nth: u64) -> Self {
        self.armed.insert(name.to_string(), nth);
        self
    }

    /// Record a hit of `name`; fails with an injected I/O error on the armed hit.
    pub(crate) fn check(&self, name: &str) -> io::Result<()> {
        let Some(&nth) = self.armed.get(name) else {
            return Ok(());
        };
        let mut hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        let count = hits.entry(name.to_string()).or_insert(0);
        *count += 1;
        if *count == nth {
            return Err(io::Error::other(format!(
                "injected failure: failpoint {name} (hit {nth})"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_exactly_on_the_armed_hit() {
        let fp = Failpoints::parse("a=2, b=1").expect("parse");
        assert!(fp.check("a").is_ok());
        assert!(fp.check("a").is_err());
        assert!(fp.check("a").is_ok());
        assert!(fp.check("b").is_err());
        assert!(fp.check("other").is_ok());
    }

    #[test]
    fn rejects_malformed_specs() {
        assert!(Failpoints::parse("a").is_err());
        assert!(Failpoints::parse("a=0").is_err());
        assert!(Failpoints::parse("a=x").is_err());
        assert!(Failpoints::parse("").expect("empty").armed.is_empty());
    }
}
