//! The report made from a run directory written by hand: two nodes, bob restored (two runs),
//! a message lost on a disconnect, a failing step, a ledger with a penalty; then the same with
//! bob's events.jsonl cut in the middle of a line, and paths that are not run directories.

use std::path::Path;

use dlp_chain::{Hash32, Lock, Output, Pubkey, Transaction, TxKind, TxRecord};
use dlp_node_api::{
    AuditEvent, AuditOutcome, AuditPolicy, ChannelState, EventKind, MessageName, NodeEvent,
    TxKindName,
};

use super::*;

fn key(b: u8) -> Pubkey {
    let mut k = [b; 33];
    k[0] = 2;
    Pubkey(k)
}

const CHANNEL: Hash32 = Hash32([7; 32]);

fn sent(seq: u64, at: u64, to: u8, msg: MessageName, l: u64, r: u64) -> NodeEvent {
    NodeEvent {
        seq,
        at_ms: at,
        kind: EventKind::MessageSent {
            peer: key(to),
            msg_type: msg,
            channel_id: Some(CHANNEL),
            local: l,
            remote: r,
        },
    }
}

fn received(seq: u64, at: u64, from: u8, msg: MessageName, l: u64, r: u64) -> NodeEvent {
    NodeEvent {
        seq,
        at_ms: at,
        kind: EventKind::MessageReceived {
            peer: key(from),
            msg_type: msg,
            channel_id: Some(CHANNEL),
            local: l,
            remote: r,
        },
    }
}

fn event(seq: u64, at: u64, kind: EventKind) -> NodeEvent {
    NodeEvent {
        seq,
        at_ms: at,
        kind,
    }
}

fn step(index: usize, line: usize, text: &str, outcome: StepOutcome, at: u64) -> StepRecord {
    StepRecord {
        index,
        line,
        verb: text.split(' ').next().unwrap_or_default().to_string(),
        text: text.to_string(),
        step: serde_json::from_str(&format!(
            "{{\"{}\": {{\"node\": \"bob\", \"backup\": \"old\"}}}}",
            text.split(' ').next().unwrap_or_default()
        ))
        .unwrap_or_default(),
        started_ms: (outcome != StepOutcome::NotRun).then_some(at),
        ended_ms: (outcome != StepOutcome::NotRun).then_some(at + 100),
        outcome,
        error: (outcome == StepOutcome::Failed)
            .then(|| "expectation failed: audit <PASSED> & not failed".to_string()),
    }
}

fn jsonl(events: &[NodeEvent]) -> String {
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap_or_default() + "\n")
        .collect()
}

/// A run directory: alice (key 1) pays bob (key 2); bob is restored; his audit passes where
/// the scenario expected it to fail (step 3 fails).
fn write_run(dir: &Path) {
    let record = RunRecord {
        format: FORMAT,
        test_name: "wrong@sqlite[in-process]".into(),
        scenario: ScenarioRecord {
            name: "wrong".into(),
            path: "scenarios/wrong.toml".into(),
            description: "bob <restored> & audited".into(),
            text: "[[steps]]\nrestore = { node = \"bob\", backup = \"old\" }\n".into(),
        },
        backend: "sqlite".into(),
        driver: "in-process".into(),
        seed: 42,
        reproduce: "cargo run -p dlp-harness -- run wrong.toml --seed 42".into(),
        started_ms: 1000,
        ended_ms: Some(2000),
        failure: Some(FailureRecord {
            kind: "step".into(),
            step: Some(3),
            message: "step 3 (expect_audit, line 20): expectation failed".into(),
            report: "scenario wrong.toml failed\ntimeline: ...".into(),
        }),
        notes: vec![NoteRecord {
            at_ms: 1001,
            what: "add node alice".into(),
        }],
        steps: vec![
            step(
                1,
                12,
                "backup = { node = \"bob\", name = \"old\" }",
                StepOutcome::Passed,
                1010,
            ),
            step(
                2,
                16,
                "restore = { node = \"bob\", backup = \"old\" }",
                StepOutcome::Passed,
                1100,
            ),
            step(
                3,
                20,
                "expect_audit = { node = \"bob\" }",
                StepOutcome::Failed,
                1300,
            ),
            step(
                4,
                24,
                "shutdown = { node = \"bob\" }",
                StepOutcome::NotRun,
                0,
            ),
        ],
        invariants: vec![InvariantRecord {
            name: "no penalty".into(),
            rule: "no penalty transaction".into(),
            checks: 1,
            problems: vec!["penalty 0x12 on ab".into()],
        }],
        nodes: ["alice", "bob"]
            .iter()
            .zip([1u8, 2])
            .map(|(n, k)| NodeMeta {
                name: n.to_string(),
                home: n.into(),
                pubkey: Some(key(k).to_string()),
                wallet: Some(key(k + 10).to_string()),
            })
            .collect(),
        channels: vec![ChannelMeta {
            name: "ab".into(),
            from: "alice".into(),
            to: "bob".into(),
            id: CHANNEL.to_string(),
        }],
        backups: vec![BackupMeta {
            name: "old".into(),
            node: "bob".into(),
            dir: "/tmp/old".into(),
        }],
    };
    write_json(dir, RUN_FILE, &record).expect("run.json");
    let faucet = |to: u8, nonce: u64| TxRecord {
        txid: Hash32([nonce as u8; 32]),
        tx: Transaction {
            kind: TxKind::Faucet { nonce },
            inputs: vec![],
            outputs: vec![Output {
                amount: 1000,
                lock: Lock::Key { pubkey: key(to) },
            }],
        },
        block_height: Some(1),
        seq: nonce,
    };
    let penalty = TxRecord {
        txid: Hash32([9; 32]),
        tx: Transaction {
            kind: TxKind::Penalty {
                channel_id: CHANNEL,
            },
            inputs: vec![],
            outputs: vec![Output {
                amount: 500,
                lock: Lock::Key { pubkey: key(11) },
            }],
        },
        block_height: None,
        seq: 3,
    };
    let ledger = LedgerRecord {
        transactions: vec![faucet(11, 1), faucet(12, 2), penalty],
    };
    write_json(dir, LEDGER_FILE, &ledger).expect("ledger.json");
    let alice = [
        event(1, 1002, EventKind::Started { pubkey: key(1) }),
        sent(2, 1020, 2, MessageName::AddTlc, 0, 0),
        sent(3, 1030, 2, MessageName::RevokeAndAck, 1, 1),
        event(
            4,
            1040,
            EventKind::PeerDisconnected {
                peer: key(2),
                reason: "closed".into(),
            },
        ),
        received(5, 1210, 2, MessageName::ReestablishChannel, 1, 1),
        event(
            6,
            1220,
            EventKind::TxBroadcast {
                txid: Hash32([9; 32]),
                kind: TxKindName::Penalty,
                channel_id: Some(CHANNEL),
                commitment_number: None,
                accepted: true,
                reject_reason: None,
            },
        ),
    ];
    let bob = [
        event(1, 1003, EventKind::Started { pubkey: key(2) }),
        received(2, 1021, 1, MessageName::AddTlc, 0, 0),
        event(
            3,
            1025,
            EventKind::BackupWritten {
                dir: "/tmp/old".into(),
                step: None,
                automatic: false,
            },
        ),
        // Second run: after the restore.
        event(1, 1150, EventKind::Started { pubkey: key(2) }),
        event(
            2,
            1160,
            EventKind::StateChanged {
                channel_id: CHANNEL,
                from: ChannelState::Stale,
                to: ChannelState::ChannelReady,
            },
        ),
        event(
            3,
            1200,
            EventKind::Audit(AuditEvent {
                channel_id: CHANNEL,
                policy: AuditPolicy::Fiber,
                local: 0,
                remote: 0,
                peer_local: 1,
                peer_remote: 1,
                outcome: AuditOutcome::Passed,
            }),
        ),
        sent(4, 1205, 1, MessageName::ReestablishChannel, 0, 0),
    ];
    for (name, events) in [("alice", &alice[..]), ("bob", &bob[..])] {
        std::fs::create_dir_all(dir.join(name)).expect("home");
        std::fs::write(dir.join(name).join("events.jsonl"), jsonl(events)).expect("events");
        std::fs::write(
            dir.join(name).join("node.log"),
            format!("2025 INFO {name} <started>\n2025 WARN {name} careful\n"),
        )
        .expect("log");
    }
}

#[test]
fn the_report_shows_lanes_arrows_marks_the_failing_step_ledger_and_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_run(dir.path());
    let path = write_html(dir.path()).expect("report");
    let html = std::fs::read_to_string(&path).expect("read");
    // One lane per node run and the ledger's.
    assert_eq!(
        html.matches("<g class=\"lane\"").count(),
        3,
        "alice#1 bob#1 bob#2"
    );
    assert_eq!(html.matches("<g class=\"lane ledger\"").count(), 1);
    for lane in ["alice#1", "bob#1", "bob#2"] {
        assert!(html.contains(&format!("data-lane=\"{lane}\"")), "{lane}");
    }
    assert!(
        html.contains("restored from &quot;old&quot;"),
        "bob#2 says where it came from"
    );
    // Matched arrows: AddTlc alice#1 -> bob#1, ReestablishChannel bob#2 -> alice#1.
    assert!(html.contains("data-from=\"alice#1\" data-to=\"bob#1\""));
    assert!(html.contains("AddTlc ab  L0 R0"));
    assert!(html.contains("data-from=\"bob#2\" data-to=\"alice#1\""));
    // The RevokeAndAck sent before the disconnect was never received.
    assert!(html.contains("<g class=\"arrow lost\""), "lost message");
    assert!(html.contains("RevokeAndAck ab  L1 R1 · lost"));
    // Marks: state, audit with both sides' numbers, backup by name, penalty on the ledger.
    assert!(html.contains("ab: Stale → ChannelReady"));
    assert!(html.contains("audit PASSED (fiber) on ab: ours L0 R0, peer L1 R1"));
    assert!(html.contains("backup &quot;old&quot;"));
    assert!(html.contains("class=\"arrow tx penalty\""));
    assert!(
        html.contains("faucet → alice"),
        "a ledger tx nobody broadcast"
    );
    // The failing step: its band, its gutter entry with the line, its row in the table.
    assert_eq!(html.matches("class=\"band failed\"").count(), 1);
    assert!(html.contains("<g class=\"step failed\" id=\"chart-step-3\">"));
    assert!(html.contains("✗ #3 · L20 expect_audit"));
    assert!(html.contains("<tr class=\"step-row failed\" id=\"step-3\">"));
    assert!(html.contains("<tr class=\"step-row not-run\" id=\"step-4\">"));
    // Escaped everywhere.
    assert!(html.contains("audit &lt;PASSED&gt; &amp; not failed"));
    assert!(html.contains("bob &lt;restored&gt; &amp; audited"));
    assert!(!html.contains("<PASSED>"));
    // Seed, reproduce command, ledger, invariants, logs.
    assert!(html.contains("cargo run -p dlp-harness -- run wrong.toml --seed 42"));
    assert!(html.contains("<td class=\"bad\">PENALTY ab</td>"), "{html}");
    assert!(html.contains("alice: 500"));
    assert!(html.contains("VIOLATED: penalty 0x12 on ab"));
    assert_eq!(html.matches("<details class=\"log\"").count(), 2);
    assert!(html.contains("data-node=\"bob\""));
    assert!(html.contains("<div class=\"ll warn\">2025 WARN bob careful</div>"));
    // Self-contained: nothing to fetch.
    for remote in ["http://", "https://", "src=", "<link"] {
        assert!(
            !html
                .replace("http://www.w3.org/2000/svg", "")
                .contains(remote),
            "{remote}"
        );
    }
}

#[test]
fn a_cut_events_file_still_renders_and_is_marked() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_run(dir.path());
    let events = dir.path().join("bob/events.jsonl");
    let text = std::fs::read_to_string(&events).expect("events");
    // Cut the last line in its middle.
    let cut = text.len() - 20;
    std::fs::write(&events, &text[..cut]).expect("cut");
    let html = render(dir.path()).expect("renders what it has");
    assert!(
        html.contains("bob/events.jsonl is cut: line 7"),
        "named in the problems"
    );
    assert!(html.contains("<g class=\"mark cut\""), "marked on the lane");
    assert!(
        html.contains("its events.jsonl is cut"),
        "and in the lane's header"
    );
    // What came before the cut is there; the cut event is not.
    assert!(html.contains("audit PASSED (fiber) on ab"));
    assert!(
        !html.contains("data-from=\"bob#2\""),
        "the cut send is gone"
    );
    // Its receive by alice stays, as an arrow whose send is not in the files.
    assert!(html.contains("<g class=\"arrow orphan\">"));
}

#[test]
fn paths_that_are_not_run_directories_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = render(dir.path()).expect_err("an empty directory");
    assert!(matches!(err, ReportError::NotARunDir { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("is not a run directory: it holds no run.json")
    );
    let file = dir.path().join("f");
    std::fs::write(&file, "x").expect("file");
    let err = render(&file).expect_err("a file");
    assert!(err.to_string().contains("it is not a directory"), "{err}");
    std::fs::write(dir.path().join(RUN_FILE), "{\"format\": 1").expect("cut record");
    let err = render(dir.path()).expect_err("a cut run.json");
    assert!(matches!(err, ReportError::Record { .. }), "{err}");
    assert!(err.to_string().contains("not a run record"), "{err}");
}

#[test]
fn events_split_into_runs_where_numbers_start_again() {
    let lines = jsonl(&[
        event(1, 1, EventKind::Started { pubkey: key(1) }),
        event(2, 2, EventKind::Held { step: "x".into() }),
        event(1, 3, EventKind::Started { pubkey: key(1) }),
    ]);
    let mut problems = Vec::new();
    let bytes = format!("{lines}not json\n");
    let (runs, cut) = load::parse_events(bytes.as_bytes(), "bob", &mut problems);
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].events.len(), 2);
    assert_eq!(runs[1].run, 2);
    assert!(cut.is_none());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("line 4: not an event"));
}
