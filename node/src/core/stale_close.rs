//! A failed audit under `on_audit_failure = "request_close"` (the default under `strict`):
//! the channel gets closed, by the live peer on our request, or, when both ends are Stale, by
//! the end with the newer backup.
//!
//! When the backups are more than one apart (or `strict` refuses either end), neither end can
//! resume, and a Stale peer ignores `RequestForceClose`: under `hold` the channel stays frozen
//! on both ends for good. Under `request_close` (the default under `strict`) each end, once it
//! holds both sets of numbers (the exchange of `reestablish`'s mutual-Stale resolution always
//! gives both ends both), computes the
//! same answer from them ([`mutual_closer`]):
//! - an end's commitment is **safe to broadcast** when the other end's `L` (the revocations it
//!   received from this end) is at most this end's `R`: the only other copy of the channel's
//!   history that survives, the other end's backup, holds no revocation of it;
//! - the **newer** backup (the larger `L + R`; equal sums: the lower node key) closes with its
//!   commitment when that is safe, else the older one when its own is; if neither is, nobody.
//!
//! For two honest backups of one channel the newer end is always safe, whatever the distance:
//! numbers only grow, and an end's `L` never exceeds the other's `R` at the same moment, so with
//! `t_new >= t_old`, `L_old(t_old) <= R_new(t_old) <= R_new(t_new)`. So the channel closes with
//! the latest state either end still knows, and the older end gets its balance from that
//! commitment (its key output pays its wallet at once; `onchain` claims the rest). If the peer's
//! audit of our numbers passes instead, it resumes and our `RequestForceClose` makes it close.
//!
//! ## What a peer that lies about being Stale can gain
//! A live peer that sends StaleNotice and then numbers older than ours makes us broadcast our
//! backup's commitment; if we revoked that commitment after the backup, the peer holds the
//! secret and takes the channel with a penalty. That is not new with this rule: under `reveal`
//! alone, a liar with the higher node key receives our numbers first, echoes them, our audit
//! passes, and its `RequestForceClose` makes the resumed channel broadcast the same commitment.
//! What the rule adds is that a liar with the lower key, which must speak first and so cannot
//! echo, wins the same way by claiming any older numbers. What a liar still cannot do: make us
//! broadcast anything but our own latest commitment, make us sign anything (no commitment, no
//! revocation, no closing transaction), learn a secret, or touch a channel that is not Stale (a
//! live channel ignores StaleNotice and never reveals its numbers). Lightning's
//! `option_data_loss_protect` trusts a peer's claim of being behind too (the up-to-date node
//! then fails the channel), but there the node that broadcasts holds its true latest state, so
//! the claim costs it nothing; here both ends are Stale, neither can tell from its own data
//! whether its commitment was revoked after its backup, and only the peer's numbers say so: the
//! exposure comes with restoring both ends, not with this rule. An operator who will not take it
//! runs `policy = "fiber"` or sets `on_audit_failure = "hold"` and `mutual_stale = "wait"`, and
//! the channel stays frozen. Both ends predict each other's audit with their own policy: two
//! ends under different policies can each wait for the other (a frozen channel, never an unsafe
//! broadcast).

use dlp_chain::{Hash32, Pubkey};

use super::Core;
use super::reestablish::audit;
use crate::config::AuditPolicy;
use crate::wire::PeerMessage;

/// One end of a channel Stale at both ends: its node key and its backup's `(L, R)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct End {
    pub(crate) key: Pubkey,
    pub(crate) numbers: (u64, u64),
}

/// Who closes a channel Stale at both ends once both revealed their numbers, as seen from the
/// end passed first (both ends compute the same answer from the same four numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MutualCloser {
    /// The peer's audit of our numbers passes: it resumes and closes on our request.
    PeerResumes,
    /// We close with our commitment.
    First,
    /// The peer closes with its commitment.
    Second,
    /// Neither commitment is safe by the other's numbers (no honest pair of backups does this).
    Nobody,
}

/// The rule that resolves a channel Stale at both ends (see the module docs, "Both ends Stale
/// and both audits fail"). An end's commitment is safe to broadcast when the other end's
/// numbers show it was not revoked: the other's `L` (revocations it received from this end) is
/// at most this end's `R`. The newer backup (the larger `L + R`; equal: the lower node key)
/// closes when its commitment is safe, else the other one when its is.
pub(crate) fn mutual_closer(policy: AuditPolicy, us: End, peer: End) -> MutualCloser {
    let (l, r) = us.numbers;
    let (pl, pr) = peer.numbers;
    if audit(policy, pl, pr, l, r).is_ok() {
        return MutualCloser::PeerResumes;
    }
    let ours_safe = pl <= r;
    let theirs_safe = l <= pr;
    // In u128: the peer chose its numbers, and a sum of two u64 may not fit one.
    let sum = |(a, b): (u64, u64)| u128::from(a) + u128::from(b);
    let we_are_newer = (sum(us.numbers), peer.key.0) > (sum(peer.numbers), us.key.0);
    match (we_are_newer, ours_safe, theirs_safe) {
        (true, true, _) | (false, true, false) => MutualCloser::First,
        (false, _, true) | (true, false, true) => MutualCloser::Second,
        (_, false, false) => MutualCloser::Nobody,
    }
}

impl Core {
    /// `on_audit_failure = "request_close"` after our audit failed. One-sided (the peer did not
    /// say it is Stale): ask it to force-close. Both ends Stale: the closer of
    /// [`mutual_closer`] closes with its commitment; when that is us we broadcast ours now,
    /// otherwise we ask the peer (a live peer closes, a Stale one ignores the request and
    /// decides by the same rule on its own).
    pub(super) fn resolve_failed_audit(
        &mut self,
        peer: Pubkey,
        id: Hash32,
        ours: (u64, u64),
        theirs: (u64, u64),
    ) {
        let peer_is_stale = self
            .reestablish
            .stale_talk
            .get(&id)
            .is_some_and(|talk| talk.notice_received);
        if peer_is_stale {
            let closer = mutual_closer(
                self.config.audit.policy,
                End {
                    key: self.me,
                    numbers: ours,
                },
                End {
                    key: peer,
                    numbers: theirs,
                },
            );
            match closer {
                MutualCloser::First => {
                    tracing::warn!(
                        channel = %id,
                        %peer,
                        "both ends of channel {id} are Stale and both audits fail: the peer's \
                         numbers (L:{}, R:{}) show our commitment is not revoked and ours is the \
                         newer backup (L:{}, R:{}); closing with our commitment",
                        theirs.0, theirs.1, ours.0, ours.1
                    );
                    if let Err(e) = self.force_close(id) {
                        self.error_event(Some(id), e);
                    }
                    return;
                }
                MutualCloser::Second => {
                    tracing::info!(
                        channel = %id,
                        %peer,
                        "both ends of channel {id} are Stale: the peer's backup is the newer one, \
                         it closes with its commitment"
                    );
                    return;
                }
                MutualCloser::PeerResumes => {}
                MutualCloser::Nobody => {
                    tracing::warn!(
                        channel = %id,
                        %peer,
                        "both ends of channel {id} are Stale and neither commitment is safe to \
                         broadcast by the other's numbers: the channel stays frozen"
                    );
                    return;
                }
            }
        }
        self.send(peer, PeerMessage::RequestForceClose { channel_id: id });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pair of backups taken along random honest histories of one channel: the closer
    /// is the newer end (or the peer resumes), never nobody, and the closer's commitment is
    /// not revoked by the other backup.
    #[test]
    fn the_newer_of_two_honest_backups_closes() {
        let key = |b: u8| {
            let mut k = [2u8; 33];
            k[1] = b;
            Pubkey(k)
        };
        let (a_key, b_key) = (key(1), key(2));
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _history in 0..200 {
            // (L_a, R_a, L_b, R_b): an end revokes (R+1) when nothing of its is in flight; the
            // other receives it (L+1).
            let mut state = (0u64, 0u64, 0u64, 0u64);
            let mut snapshots = vec![state];
            for _ in 0..24 {
                let (la, ra, lb, rb) = state;
                let moves: Vec<(u64, u64, u64, u64)> = [
                    (ra == lb).then_some((la, ra + 1, lb, rb)),
                    (ra == lb + 1).then_some((la, ra, lb + 1, rb)),
                    (rb == la).then_some((la, ra, lb, rb + 1)),
                    (rb == la + 1).then_some((la + 1, ra, lb, rb)),
                ]
                .into_iter()
                .flatten()
                .collect();
                state = moves[(next() % moves.len() as u64) as usize];
                snapshots.push(state);
            }
            for policy in [AuditPolicy::Fiber, AuditPolicy::Strict] {
                for (ta, a) in snapshots.iter().enumerate() {
                    for (tb, b) in snapshots.iter().enumerate() {
                        let a_end = End {
                            key: a_key,
                            numbers: (a.0, a.1),
                        };
                        let b_end = End {
                            key: b_key,
                            numbers: (b.2, b.3),
                        };
                        let closer = mutual_closer(policy, a_end, b_end);
                        let mirrored = mutual_closer(policy, b_end, a_end);
                        if audit(policy, a.0, a.1, b.2, b.3).is_ok() {
                            // a resumes: the rule is only asked after a failed audit.
                            continue;
                        }
                        assert_ne!(closer, MutualCloser::Nobody, "{a:?} {b:?} ({ta}, {tb})");
                        if a.0 + a.1 > b.2 + b.3 {
                            assert!(
                                matches!(closer, MutualCloser::First | MutualCloser::PeerResumes),
                                "the newer end must close: {a:?} {b:?} got {closer:?}"
                            );
                        }
                        match closer {
                            MutualCloser::PeerResumes => {
                                assert!(audit(policy, b.2, b.3, a.0, a.1).is_ok())
                            }
                            MutualCloser::First => {
                                assert!(b.2 <= a.1, "a's commitment revoked: {a:?} {b:?}");
                                assert_eq!(mirrored, MutualCloser::Second, "{a:?} {b:?}");
                            }
                            MutualCloser::Second => {
                                assert!(a.0 <= b.3, "b's commitment revoked: {a:?} {b:?}");
                                assert_eq!(mirrored, MutualCloser::First, "{a:?} {b:?}");
                            }
                            MutualCloser::Nobody => unreachable!(),
                        }
                    }
                }
            }
        }
    }

    /// The peer chooses its numbers: the largest ones neither overflow nor make us broadcast
    /// a commitment they show revoked.
    #[test]
    fn numbers_at_the_limit_neither_overflow_nor_make_us_close_unsafely() {
        let us = End {
            key: Pubkey([2u8; 33]),
            numbers: (3, 3),
        };
        let liar = End {
            key: Pubkey([3u8; 33]),
            numbers: (u64::MAX, u64::MAX),
        };
        for policy in [AuditPolicy::Fiber, AuditPolicy::Strict] {
            // Its L (u64::MAX revocations of ours) is past our R: ours is not safe; its own
            // commitment is (our L 3 <= its R), and it is the "newer": it closes, not us.
            assert_eq!(mutual_closer(policy, us, liar), MutualCloser::Second);
            assert_eq!(mutual_closer(policy, liar, us), MutualCloser::First);
        }
    }
}
