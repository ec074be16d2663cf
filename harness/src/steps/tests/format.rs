//! Parsing and validation: every error located, every bound enforced before anything is
//! expanded, every value quoted in an error clipped.

use std::path::{Path, PathBuf};

use dlp_node_api::Backend;

use crate::error::HarnessError;
use crate::scenario::{Found, Shape, discover, shape_pairs};
use crate::steps::{Scenario, Step};

fn parse(text: &str) -> Result<Scenario, HarnessError> {
    Scenario::parse(Path::new("t.toml"), text)
}

const BASE: &str = "description = \"d\"\n[nodes.alice]\n[nodes.bob]\n\
    [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 1000\n";

#[test]
fn a_valid_scenario_parses() {
    let s = parse(&format!(
        "{BASE}[[steps]]\npay = {{ from = \"alice\", to = \"bob\", amount = 10 }}\n\
         [[steps]]\nbackup = {{ node = \"bob\", name = \"b1\" }}\n\
         [[steps]]\nrestore = {{ node = \"bob\", backup = \"b1\" }}\n"
    ))
    .expect("valid");
    assert_eq!(s.file.steps.len(), 3);
    assert_eq!(s.backends(), vec![Backend::Rocksdb, Backend::Sqlite]);
}

fn error_at(text: &str) -> (usize, String) {
    match parse(text) {
        Err(HarnessError::Invalid { line, message, .. }) => (line, message),
        other => panic!("expected an invalid-file error, got {other:?}"),
    }
}

#[test]
fn topologies_expand_into_named_channels() {
    let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
    let pairs = |shape| shape_pairs(shape, &names).len();
    assert_eq!(
        (pairs(Shape::Line), pairs(Shape::Star), pairs(Shape::Mesh)),
        (3, 3, 6)
    );
    let s = parse(
        "description = \"d\"\n[nodes.a]\n[nodes.b]\n[nodes.c]\n\
         topology = { shape = \"line\", nodes = [\"a\", \"b\", \"c\"], amount = 5 }\n\
         [[steps]]\nexpect_state = { node = \"b\", channel = \"b-c\", state = \"ChannelReady\" }\n",
    );
    let err = s.expect_err("topology after a table header belongs to [nodes.c]");
    assert!(err.to_string().contains("topology"), "{err}");
    let s = parse(
        "description = \"d\"\n\
         topology = { shape = \"line\", nodes = [\"a\", \"b\", \"c\"], amount = 5 }\n\
         [nodes.a]\n[nodes.b]\n[nodes.c]\n\
         [[steps]]\nexpect_state = { node = \"b\", channel = \"b-c\", state = \"ChannelReady\" }\n",
    )
    .expect("valid");
    let channels: Vec<String> = s
        .file
        .channels
        .iter()
        .map(|c| c.get_ref().name.clone())
        .collect();
    assert_eq!(channels, ["a-b", "b-c"]);
}

#[test]
fn errors_name_the_line_and_what_was_expected() {
    let (line, msg) = error_at(&format!(
        "{BASE}[[steps]]\npay = {{ from = \"alice\", to = \"carol\", amount = 1 }}\n"
    ));
    assert_eq!(line, 10);
    assert!(msg.contains("unknown node \"carol\""), "{msg}");
    let (line, msg) = error_at(&format!(
        "{BASE}[[steps]]\nrestore = {{ node = \"bob\", backup = \"nope\" }}\n"
    ));
    assert_eq!(line, 10);
    assert!(msg.contains("no earlier backup"), "{msg}");
    let (_, msg) = error_at(&format!(
        "{BASE}[[steps]]\npay = {{ from = \"alice\", to = \"bob\", amount = 1, colour = 2 }}\n"
    ));
    assert!(msg.contains("colour"), "{msg}");
    let (_, msg) = error_at(&format!(
        "{BASE}[[steps]]\nteleport = {{ node = \"bob\" }}\n"
    ));
    assert!(msg.contains("teleport"), "{msg}");
    let (_, msg) = error_at(&format!(
        "{BASE}[[steps]]\nwait_held = {{ node = \"bob\" }}\n"
    ));
    assert!(msg.contains("no hold armed"), "{msg}");
    let (line, msg) = error_at("description = \"d\"\nnodez = 1\n");
    assert_eq!(line, 2);
    assert!(msg.contains("nodez"), "{msg}");
}

fn error_at_column(text: &str) -> (usize, usize, String) {
    match parse(text) {
        Err(HarnessError::Invalid {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        other => panic!("expected an invalid-file error, got {other:?}"),
    }
}

#[test]
fn a_step_with_several_verbs_or_none_says_so_at_its_line() {
    let (line, msg) = error_at(&format!(
        "{BASE}[[steps]]\npay = {{ from = \"alice\", to = \"bob\", amount = 1 }}\n\
         mine = {{ blocks = 1 }}\n"
    ));
    assert_eq!(line, 10);
    assert_eq!(
        msg,
        "a step has exactly one verb; this one has 2: pay, mine"
    );
    let (line, msg) = error_at(&format!(
        "{BASE}[[steps]]\n[[steps]]\nmine = {{ blocks = 1 }}\n"
    ));
    assert_eq!(line, 9, "the empty step's header");
    assert!(
        msg.starts_with("a step has exactly one verb; this one has none (verbs: start, stop,")
            && msg.contains("mine")
            && msg.contains("expect_penalty"),
        "{msg}"
    );
    let (line, msg) = error_at(
        "description = \"d\"\nsteps = [{ mine = { blocks = 1 }, crash = { node = \"a\" } }]\n\
         [nodes.a]\n",
    );
    assert_eq!(line, 2);
    assert!(msg.ends_with("has 2: mine, crash"), "{msg}");
}

#[test]
fn deep_nesting_is_refused_where_it_starts_without_overflowing_the_stack() {
    let (line, column, msg) = error_at_column(&format!("{BASE}x = {}\n", "[".repeat(100_000)));
    assert_eq!((line, column), (9, 5), "{msg}");
    assert!(msg.contains("nested more than 32 deep"), "{msg}");
    let (line, column, msg) = error_at_column(&format!("{BASE}{} = 1\n", vec!["k"; 100].join(".")));
    assert_eq!((line, column), (9, 1), "{msg}");
    assert!(msg.contains("more than 32 dotted parts"), "{msg}");
    let (line, _, msg) = error_at_column(&format!(
        "{BASE}[[steps]]\nmine = {}\n",
        "{ a = ".repeat(50_000)
    ));
    assert_eq!(line, 10, "{msg}");
}

#[test]
fn values_quoted_in_errors_are_clipped() {
    let huge = "x".repeat(1 << 20);
    for text in [
        format!("{BASE}[[steps]]\nmine = {{ blocks = \"{huge}\" }}\n"),
        format!("{BASE}[[steps]]\npay = {{ from = \"{huge}\", to = \"bob\", amount = 1 }}\n"),
        format!("{BASE}\"{huge}\" = 1\n"),
        format!("{BASE}[[steps]]\nhold = {{ node = \"bob\", step = \"{huge}\" }}\n"),
        format!(
            "{BASE}[[steps]]\nexpect_state = {{ node = \"bob\", channel = \"{huge}\", state = \"x\" }}\n"
        ),
    ] {
        let err = parse(&text).expect_err("invalid");
        let shown = err.to_string();
        assert!(
            shown.len() < 300 && shown.contains("1048576 bytes"),
            "{} bytes: {}",
            shown.len(),
            &shown[..shown.len().min(400)]
        );
    }
    // An unknown verb is echoed clipped, followed by every verb there is (the list grows by
    // about 20 bytes a verb; the clipped value stays 100).
    let err = parse(&format!("{BASE}[[steps]]\n{huge} = {{ node = \"bob\" }}\n"))
        .expect_err("unknown verb");
    let shown = err.to_string();
    assert!(
        shown.len() < 1000 && shown.contains("1048576 bytes") && shown.contains("`mine`"),
        "{} bytes: {}",
        shown.len(),
        &shown[..shown.len().min(800)]
    );
}

#[test]
fn non_utf8_is_an_invalid_file_at_its_line_and_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bin.toml");
    std::fs::write(&path, b"description = \"d\"\n[nodes.a\xffb]\n").expect("write");
    match Scenario::load(&path) {
        Err(HarnessError::Invalid {
            line,
            column,
            message,
            ..
        }) => {
            assert_eq!((line, column), (2, 9));
            assert_eq!(
                message,
                "not UTF-8 (byte 0xff at offset 26); scenario files are UTF-8 text"
            );
        }
        other => panic!("expected an invalid-file error, got {other:?}"),
    }
}

#[test]
fn only_regular_files_of_at_most_1_mib_are_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("dir.toml");
    std::fs::create_dir(&sub).expect("mkdir");
    let socket = dir.path().join("sock.toml");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    for (path, kind) in [
        (sub, "a directory"),
        (socket, "a socket"),
        (PathBuf::from("/dev/null"), "a character device"),
    ] {
        let err = Scenario::load(&path).expect_err("not a regular file");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: not a regular file ({kind}); a scenario is a regular *.toml file",
                path.display()
            )
        );
    }
    let big = dir.path().join("big.toml");
    let text = format!("description = \"{}\"\n[nodes.a]\n", "x".repeat(1 << 20));
    std::fs::write(&big, &text).expect("write");
    let err = Scenario::load(&big).expect_err("too large");
    assert!(
        err.to_string()
            .contains("a scenario file is at most 1048576 bytes (1 MiB)"),
        "{err}"
    );
}

#[test]
fn an_empty_selection_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), "not a scenario").expect("write");
    let err = discover(&[dir.path().to_path_buf()]).expect_err("nothing to check");
    assert_eq!(
        err.to_string(),
        format!("no scenario files (*.toml) in {}", dir.path().display())
    );
}

#[test]
fn directories_are_searched_recursively_and_named_by_their_path_below_the_one_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for sub in ["fiber", "regressions/deeper", ".hidden"] {
        std::fs::create_dir_all(root.join(sub)).expect("mkdir");
    }
    for file in [
        "b.toml",
        "a.toml",
        "fiber/x.toml",
        "regressions/deeper/y.toml",
        ".hidden/z.toml",
    ] {
        std::fs::write(root.join(file), "").expect("write");
    }
    let names = |found: Vec<Found>| -> Vec<String> { found.into_iter().map(|f| f.name).collect() };
    let found = discover(&[root.to_path_buf()]).expect("found");
    assert_eq!(found[2].path, root.join("fiber/x.toml"));
    assert_eq!(
        names(found),
        ["a", "b", "fiber/x", "regressions/deeper/y"],
        "a directory's own files first, then its subdirectories; hidden ones skipped"
    );
    // Relative to the directory given; a file given is named by its stem; each file once.
    let found = discover(&[
        root.join("regressions"),
        root.join("fiber/x.toml"),
        root.to_path_buf(),
    ])
    .expect("found");
    assert_eq!(names(found), ["deeper/y", "x", "a", "b"]);
}

#[test]
fn mine_is_bounded_by_the_ledgers_limit_per_call() {
    let mine = |blocks: &str| format!("{BASE}[[steps]]\nmine = {{ blocks = {blocks} }}\n");
    parse(&mine("10_000")).expect("the limit itself");
    for blocks in ["4294967296", "10_001", "0"] {
        let (line, msg) = error_at(&mine(blocks));
        assert_eq!(line, 10);
        assert!(msg.contains("must be 1 to 10000"), "{msg}");
    }
}

#[test]
fn counts_are_checked_before_a_topology_is_expanded() {
    let nodes = |n: usize| {
        (0..n)
            .map(|i| format!("\"n{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let declared = |n: usize| {
        (0..n)
            .map(|i| format!("[nodes.n{i}]\n"))
            .collect::<String>()
    };
    // The file: 3,000 names in a mesh (4.5 million pairs) is refused at once.
    let (line, msg) = error_at(&format!(
        "description = \"d\"\ntopology = {{ shape = \"mesh\", nodes = [{}], amount = 5 }}\n{}",
        nodes(3000),
        declared(3000)
    ));
    assert!(
        msg.contains("3000 nodes; a scenario has at most 128"),
        "{msg}"
    );
    assert_eq!(line, 131, "the 129th node");
    // The same names over two declared nodes: refused for the count, not by expanding.
    let (_, msg) = error_at(&format!(
        "description = \"d\"\ntopology = {{ shape = \"mesh\", nodes = [{}], amount = 5 }}\n{}",
        nodes(3000),
        declared(2)
    ));
    assert!(
        msg.contains("topology: 3000 nodes; a scenario has at most 128"),
        "{msg}"
    );
    // 24 nodes are allowed, but their mesh makes 276 channels.
    let (line, msg) = error_at(&format!(
        "description = \"d\"\ntopology = {{ shape = \"mesh\", nodes = [{}], amount = 5 }}\n{}",
        nodes(24),
        declared(24)
    ));
    assert_eq!(line, 2);
    assert!(
        msg.contains("a mesh of 24 nodes makes 276 channels"),
        "{msg}"
    );
    parse(&format!(
        "description = \"d\"\ntopology = {{ shape = \"line\", nodes = [{}], amount = 5 }}\n{}",
        nodes(128),
        declared(128)
    ))
    .expect("128 nodes in a line");
    let (line, msg) = error_at(&format!("description = \"d\"\n{}", declared(129)));
    assert_eq!(line, 130, "the 129th node");
    assert!(
        msg.contains("129 nodes; a scenario has at most 128"),
        "{msg}"
    );
    let (_, msg) = error_at(&format!(
        "description = \"d\"\ntopology = {{ shape = \"line\", nodes = [\"n0\", \"n1\", \"n0\"], amount = 5 }}\n{}",
        declared(2)
    ));
    assert!(msg.contains("node \"n0\" listed twice"), "{msg}");
}

#[test]
fn names_and_amounts_are_bounded() {
    let (line, msg) = error_at("description = \"d\"\n[nodes.alice]\n[nodes.\"../x\"]\n");
    assert_eq!(line, 3);
    assert!(msg.contains("node name \"../x\""), "{msg}");
    let channel = |amount: &str| {
        format!(
            "description = \"d\"\n[nodes.alice]\n[nodes.bob]\n\
             [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = {amount}\n"
        )
    };
    parse(&channel("100_000_000_000")).expect("a whole wallet");
    let (_, msg) = error_at(&channel("100_000_000_001"));
    assert!(msg.contains("must be 1 to 100000000000"), "{msg}");
    // Two channels of a whole wallet each: their sum is more than one wallet.
    let (line, msg) = error_at(&format!(
        "{}[[channels]]\nname = \"ab2\"\nfrom = \"alice\"\nto = \"bob\"\namount = 100_000_000_000\n",
        channel("100_000_000_000")
    ));
    assert_eq!(line, 9);
    assert!(msg.contains("alice opens 200000000000 shannons"), "{msg}");
    for step in [
        "pay = { from = \"alice\", to = \"bob\", amount = 9223372036854775807 }",
        "send_payment = { from = \"alice\", to = \"bob\", amount = 0, name = \"p\" }",
        "hold = { node = \"bob\", step = \"sent:AddTlc\", nth = 9223372036854775807 }",
        "backup_at = { node = \"bob\", step = \"sent:AddTlc\", nth = 1_000_001, name = \"b\" }",
        "expect_balance = { node = \"bob\", channel = \"ab\", local = 9223372036854775807 }",
        "expect_wallet_change = { node = \"bob\", amount = -9223372036854775808 }",
        &format!(
            "hold = {{ node = \"bob\", step = \"sent:{}\" }}",
            "X".repeat(124)
        ),
    ] {
        let (line, msg) = error_at(&format!("{BASE}[[steps]]\n{step}\n"));
        assert_eq!(line, 10, "{step}: {msg}");
    }
}

#[test]
fn a_generated_scenario_knows_the_lines_of_its_steps() {
    let mut file = parse(BASE).expect("valid").file;
    file.steps = vec![
        toml::Spanned::new(
            0..0,
            Step::MarkWallets(crate::steps::ledger::MarkWallets {}),
        ),
        toml::Spanned::new(0..0, Step::Mine(crate::steps::ledger::Mine { blocks: 1 })),
    ];
    let s = Scenario::generated(Path::new("gen.toml"), &file, "one\ntwo").expect("valid");
    for (i, written) in ["mark_wallets = {}", "mine = { blocks = 1 }"]
        .into_iter()
        .enumerate()
    {
        let (line, column) = s.step_position(i).expect("a step");
        assert!(line > 10, "step {i} at line {line}:\n{}", s.text());
        assert_eq!(s.text().lines().nth(line - 1), Some(written));
        assert_eq!(column, 1);
    }
    assert_eq!(s.step_position(2), None);
}

#[test]
fn a_misspelt_message_in_step_control_is_refused_at_its_line_with_the_names() {
    for step in [
        "hold = { node = \"bob\", step = \"sent:CommitmentSinged\" }",
        "backup_at = { node = \"bob\", step = \"received:RevokeAndAk\", name = \"b\" }",
    ] {
        let (line, msg) = error_at(&format!("{BASE}[[steps]]\n{step}\n"));
        assert_eq!(line, 10, "{step}: {msg}");
        let (verb, misspelt) = step
            .split_once(" = ")
            .map(|(verb, _)| (verb, step.split('"').nth(3).unwrap_or_default()))
            .unwrap_or_default();
        assert!(
            msg.starts_with(&format!("{verb}: step \"{misspelt}\": no message named")),
            "{msg}"
        );
        for name in dlp_node_api::MessageName::ALL {
            assert!(msg.contains(name.as_str()), "{name} missing from: {msg}");
        }
    }
    let (line, msg) = error_at(&format!(
        "{BASE}[[steps]]\nhold = {{ node = \"bob\", step = \"after:AddTlc\" }}\n"
    ));
    assert_eq!(line, 10);
    assert!(
        msg.contains("must be sent:<Message> or received:<Message>"),
        "{msg}"
    );
    let (_, msg) = error_at(&format!(
        "{BASE}[[steps]]\nhold = {{ node = \"bob\", step = \"sent:AddTlc\", nth = 0 }}\n"
    ));
    assert_eq!(msg, "hold: nth 0 must be 1 to 1000000");
    for name in dlp_node_api::MessageName::ALL {
        parse(&format!(
            "{BASE}[[steps]]\nhold = {{ node = \"bob\", step = \"received:{name}\" }}\n"
        ))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn expect_resolution_is_bounded_and_names_a_closer_only_for_a_close() {
    let step = |fields: &str| format!("{BASE}[[steps]]\nexpect_resolution = {{ {fields} }}\n");
    parse(&step(
        "channel = \"ab\", outcome = \"closed\", by = \"alice\", within_blocks = 100",
    ))
    .expect("the limit itself");
    parse(&step("channel = \"ab\", outcome = \"resumed\"")).expect("resumed, default bound");
    for (fields, want) in [
        (
            "channel = \"ab\", outcome = \"closed\", within_blocks = 0",
            "must be 1 to 100",
        ),
        (
            "channel = \"ab\", outcome = \"closed\", within_blocks = 101",
            "must be 1 to 100",
        ),
        (
            "channel = \"ab\", outcome = \"resumed\", by = \"alice\"",
            "only with outcome",
        ),
        (
            "channel = \"ab\", outcome = \"closed\", by = \"dave\"",
            "unknown node \"dave\"",
        ),
        ("channel = \"ab\", outcome = \"frozen\"", "unknown variant"),
    ] {
        let (line, msg) = error_at(&step(fields));
        assert_eq!(line, 10, "{fields}");
        assert!(msg.contains(want), "{fields}: {msg}");
    }
}
