//! A scenario written back out parses to the same steps.

use std::path::Path;

use crate::steps::Scenario;

#[test]
fn a_rendered_scenario_parses_back_to_the_same_steps() {
    let text = "description = \"d \\\"quoted\\\"\"\nallow_penalties = true\n\
        [nodes.alice]\nmutual_stale = \"reveal\"\non_force_close_request = \"ignore\"\n\
        [nodes.bob]\naudit_policy = \"strict\"\nfee_rate = 2500\n\
        [sweep]\nnode = \"bob\"\n\
        [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 1000\n\
        [[steps]]\nbackup_at = { node = \"bob\", step = \"sent:RevokeAndAck\", channel = \"ab\", nth = 3, name = \"b\" }\n\
        [[steps]]\npay = { from = \"alice\", to = \"bob\", amount = 10, expect = \"failed\", reason_contains = \"Stale\" }\n\
        [[steps]]\npay = { from = \"alice\", to = \"bob\", amount = 10, route = [\"bob\"], attempts = 1 }\n\
        [[steps]]\nrestore = { node = \"bob\", backup = \"b\" }\n\
        [[steps]]\nwait_quiescent = {}\n\
        [[steps]]\npause = { node = \"alice\" }\n\
        [[steps]]\nresume = { node = \"alice\" }\n\
        [[steps]]\npartition = { a = \"alice\", b = \"bob\" }\n\
        [[steps]]\nexpect_unreachable = { from = \"bob\", to = \"alice\" }\n\
        [[steps]]\nexpect_penalty = { channel = \"ab\" }\n";
    let first = Scenario::parse(Path::new("t.toml"), text).expect("valid");
    let rendered = crate::scenario::render(&first.file, "line one\n\nline three");
    assert!(
        rendered.starts_with("# line one\n#\n# line three\n"),
        "{rendered}"
    );
    let second = Scenario::parse(Path::new("t.toml"), &rendered)
        .unwrap_or_else(|e| panic!("{e}\n{rendered}"));
    assert_eq!(
        super::support::step_texts(&first),
        super::support::step_texts(&second)
    );
    assert_eq!(first.file.description, second.file.description);
    assert_eq!(
        second.file.sweep.as_ref().map(|s| s.get_ref().node.clone()),
        Some("bob".to_string())
    );
    assert!(second.file.allow_penalties);
    assert_eq!(
        format!("{:?}", second.file.nodes["bob"].audit_policy),
        "Some(Strict)"
    );
    assert_eq!(second.file.nodes["bob"].fee_rate, Some(2_500));
    let alice = &second.file.nodes["alice"];
    assert_eq!(
        format!(
            "{:?} {:?}",
            alice.mutual_stale, alice.on_force_close_request
        ),
        "Some(Reveal) Some(Ignore)"
    );
    assert_eq!(second.file.nodes["bob"].mutual_stale, None);
}
