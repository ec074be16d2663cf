//! Channels opened by steps are checked like those of `[[channels]]`.

use std::path::Path;

use crate::error::HarnessError;
use crate::steps::Scenario;

const BASE: &str = "description = \"d\"\n[nodes.alice]\n[nodes.bob]\n\
    [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 1000\n";

fn parse(text: &str) -> Result<Scenario, HarnessError> {
    Scenario::parse(Path::new("t.toml"), text)
}

fn error_at(text: &str) -> (usize, String) {
    match parse(text) {
        Err(HarnessError::Invalid { line, message, .. }) => (line, message),
        other => panic!("expected an invalid-file error, got {other:?}"),
    }
}
#[test]
fn open_channel_names_a_channel_for_later_steps_and_is_checked_like_one() {
    let step = |s: &str| format!("[[steps]]\n{s}\n");
    let open = "open_channel = { name = \"ba\", from = \"bob\", to = \"alice\", amount = 500 }";
    let uses = "expect_state = { node = \"alice\", channel = \"ba\", state = \"ChannelReady\" }";
    parse(&format!("{BASE}{}{}", step(open), step(uses))).expect("opened, then used");
    // Used before it is opened: unknown there (line 10), listing the channels known there.
    let (line, msg) = error_at(&format!("{BASE}{}{}", step(uses), step(open)));
    assert_eq!(line, 10, "{msg}");
    assert!(
        msg.contains("unknown channel \"ba\" (channels: ab)"),
        "{msg}"
    );
    // A name already taken, by [[channels]] or an earlier open_channel.
    let twice = "open_channel = { name = \"ab\", from = \"bob\", to = \"alice\", amount = 5 }";
    let (line, msg) = error_at(&format!("{BASE}{}", step(twice)));
    assert_eq!(line, 10);
    assert!(
        msg.contains("open_channel: channel name \"ab\" used twice"),
        "{msg}"
    );
    // More than the opener's wallet with what it opened before: both amounts named.
    let big = "open_channel = { name = \"ab2\", from = \"alice\", to = \"bob\", amount = 99_999_999_001 }";
    let (line, msg) = error_at(&format!("{BASE}{}", step(big)));
    assert_eq!(line, 10);
    assert!(
        msg.contains("alice opens 100000000001 shannons of channels with it, 1000 before it"),
        "{msg}"
    );
    // Both ends must run, and not be partitioned.
    let (line, msg) = error_at(&format!(
        "{BASE}{}{}",
        step("stop = { node = \"alice\" }"),
        step(open)
    ));
    assert_eq!(line, 12);
    assert!(
        msg.contains("alice is not running here (stopped at line 10)"),
        "{msg}"
    );
    let (line, msg) = error_at(&format!(
        "{BASE}{}{}",
        step("partition = { a = \"alice\", b = \"bob\" }"),
        step(open)
    ));
    assert_eq!(line, 12);
    assert!(msg.contains("partitioned here; heal them first"), "{msg}");
    // To itself.
    let own = "open_channel = { name = \"aa\", from = \"alice\", to = \"alice\", amount = 5 }";
    let (_, msg) = error_at(&format!("{BASE}{}", step(own)));
    assert!(msg.contains("\"aa\" connects alice to itself"), "{msg}");
}
