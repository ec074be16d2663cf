//! Protocol knowledge the harness judges nodes by, kept apart from the code that drives them so
//! every judge (the invariants, the sweep's oracle, the explorer) applies the same rule and none
//! borrows it from the node under test.
//!
//! - [`audit`]: what a restored channel must do, from both sides' commitment numbers.
//! - [`silence`]: passive silence, the rule a Stale channel obeys until its peer speaks.
//! - [`resolve`]: liveness, how a restored channel ends up when only the nodes act (resumed,
//!   closed by which end, or frozen).

pub mod audit;
pub mod resolve;
pub mod silence;
