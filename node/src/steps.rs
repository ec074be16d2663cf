//! Step control: hold a node right after a named protocol step, release it later.
//!
//! A step is `sent:<MessageType>` or `received:<MessageType>`, optionally for one channel, and
//! the `nth` occurrence after arming (default 1). The node's core checks armed holds after each
//! `MessageSent` / `MessageReceived` event and, on a match, stops processing until released.
//! Because every state change is persisted before the event that announces it, and the core is
//! the only writer, the store is quiescent while held: a backup taken then is exactly that step.

use std::sync::Mutex;

use tokio::sync::Notify;

use crate::events::EventKind;

pub(crate) use dlp_node_api::steps::{BadStep, StepAction, StepSpec};

/// Whether `event` is the step `spec` names (its channel too, if it names one). A spec that
/// does not parse matches nothing (`arm` refuses those).
fn matches(spec: &StepSpec, event: &EventKind) -> bool {
    let Ok(want) = spec.parse() else {
        return false;
    };
    event
        .message()
        .is_some_and(|(direction, message, channel_id)| {
            direction == want.direction
                && *message == want.message
                && (spec.channel_id.is_none() || spec.channel_id == channel_id)
        })
}

#[derive(Debug, Default)]
struct State {
    armed: Vec<(StepSpec, u64)>,
    held: Option<String>,
    release: bool,
}

/// Armed holds and the current hold, shared by the core and the RPC / harness.
#[derive(Debug, Default)]
pub(crate) struct StepControl {
    state: Mutex<State>,
    released: Notify,
    held_changed: Notify,
}

impl StepControl {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Arm a hold.
    pub(crate) fn arm(&self, spec: StepSpec) -> Result<(), BadStep> {
        spec.parse()?;
        self.lock().armed.push((spec, 0));
        Ok(())
    }

    /// Disarm every hold that has not fired.
    pub(crate) fn disarm_all(&self) {
        self.lock().armed.clear();
    }

    /// The step the node is held at, if any.
    pub(crate) fn held(&self) -> Option<String> {
        self.lock().held.clone()
    }

    /// Release the node if held (and remember the release if it is about to hold).
    pub(crate) fn release(&self) -> bool {
        let mut state = self.lock();
        let was_held = state.held.is_some();
        if was_held {
            state.release = true;
        }
        drop(state);
        self.released.notify_waiters();
        was_held
    }

    /// (Tests wait on it; the harness waits on `Held` events.)
    /// Wait until the node is held (or `timeout` passes); returns the step.
    #[cfg(test)]
    pub(crate) async fn wait_held(&self, timeout: std::time::Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.held_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(step) = self.held() {
                return Some(step);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }

    /// Called by the core after each event: the steps and actions that fire now (every armed
    /// spec matching the event counts it, so two specs on the same message both stay exact).
    /// A hold marks the node held (see [`wait_release`](Self::wait_release)).
    pub(crate) fn check(&self, event: &EventKind) -> Vec<(String, StepAction)> {
        let mut state = self.lock();
        let mut fired = Vec::new();
        state.armed.retain_mut(|(spec, seen)| {
            if !matches(spec, event) {
                return true;
            }
            *seen += 1;
            if *seen >= spec.nth {
                fired.push((spec.step.clone(), spec.action));
                false
            } else {
                true
            }
        });
        let hold = fired.iter().find(|(_, a)| *a == StepAction::Hold).cloned();
        if let Some((step, _)) = &hold {
            state.held = Some(step.clone());
            state.release = false;
        }
        drop(state);
        if hold.is_some() {
            self.held_changed.notify_waiters();
        }
        fired
    }

    /// Called by the core while held: returns once released.
    pub(crate) async fn wait_release(&self) {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            {
                let mut state = self.lock();
                if state.release {
                    state.release = false;
                    state.held = None;
                    return;
                }
            }
            released.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dlp_chain::Pubkey;

    fn sent(msg: &str) -> EventKind {
        EventKind::MessageSent {
            peer: Pubkey([2; 33]),
            msg_type: msg.parse().expect("infallible"),
            channel_id: None,
            local: 0,
            remote: 0,
        }
    }

    #[test]
    fn holds_fire_on_the_nth_matching_step_only() {
        let control = StepControl::default();
        control
            .arm(StepSpec {
                step: "sent:CommitmentSigned".into(),
                channel_id: None,
                nth: 2,
                action: StepAction::Hold,
            })
            .expect("valid");
        assert_eq!(control.check(&sent("AddTlc")), vec![]);
        assert_eq!(control.check(&sent("CommitmentSigned")), vec![]);
        assert_eq!(
            control.check(&sent("CommitmentSigned")),
            vec![("sent:CommitmentSigned".to_string(), StepAction::Hold)]
        );
        assert_eq!(control.held().as_deref(), Some("sent:CommitmentSigned"));
        assert_eq!(
            control.check(&sent("CommitmentSigned")),
            vec![],
            "fires once"
        );
    }

    #[test]
    fn two_specs_on_the_same_message_both_count_it() {
        let control = StepControl::default();
        for (nth, action) in [(1, StepAction::Backup), (2, StepAction::Hold)] {
            control
                .arm(StepSpec {
                    step: "sent:CommitmentSigned".into(),
                    channel_id: None,
                    nth,
                    action,
                })
                .expect("valid");
        }
        assert_eq!(
            control.check(&sent("CommitmentSigned")),
            vec![("sent:CommitmentSigned".to_string(), StepAction::Backup)]
        );
        assert_eq!(
            control.check(&sent("CommitmentSigned")),
            vec![("sent:CommitmentSigned".to_string(), StepAction::Hold)],
            "the hold counted the first message too"
        );
    }

    #[test]
    fn bad_steps_are_refused() {
        let control = StepControl::default();
        for step in ["CommitmentSigned", "sideways:AddTlc", "sent:"] {
            assert!(
                control
                    .arm(StepSpec {
                        step: step.into(),
                        channel_id: None,
                        nth: 1,
                        action: StepAction::Hold,
                    })
                    .is_err()
            );
        }
    }
}
