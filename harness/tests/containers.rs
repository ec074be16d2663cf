//! The container driver against the real Docker daemon: what a user meets when things go wrong
//! (no daemon, a node that dies at start), and what it leaves behind (leftovers of dead runs
//! removed, kept containers kept, one image per binary content).
//!
//! The tests that use the daemon change what it holds for every process (they plant and remove
//! the leftovers of a dead harness, build and reuse the image of the current binaries), so they
//! run one at a time: nextest puts this binary in the test group `docker-daemon`
//! (.config/nextest.toml: one test at a time across its processes), and under `cargo test`,
//! whose tests are threads of one process, each takes the file lock `docker_daemon`
//! (`#[file_serial]`, a lock file in the temp directory, so other processes wait too). The test
//! without a daemon takes no lock: it never reaches one. They need the `dlp-node` and `dlp-chain`
//! binaries (`cargo build --workspace --all-targets`).

mod testkit;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use dlp_harness::driver::{
    AuditSettings, BackupSettings, ContainerDriver, Driver, ForwardingSettings, NodeBuild, NodeSpec,
};
use dlp_node_api::Backend;
use serial_test::file_serial;
use testkit::{OutputWithin, harness, write};

const TIMEOUT: Duration = Duration::from_secs(120);

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output_within(TIMEOUT)
}

fn docker_text(args: &[&str]) -> String {
    String::from_utf8_lossy(&docker(args).stdout)
        .trim()
        .to_string()
}

/// Run the harness CLI with a deadline, returning its output and how long it took.
fn run_harness(args: &[&str], env: &[(&str, &str)], runs: &Path) -> (Output, Duration) {
    let started = Instant::now();
    let out = harness()
        .args(args)
        .env("DLP_HARNESS_RUN_DIR", runs)
        .envs(env.iter().copied())
        .output_within(TIMEOUT);
    (out, started.elapsed())
}

fn scenario(dir: &Path) -> PathBuf {
    write(
        dir,
        "two_nodes.toml",
        "description = \"two nodes and a channel\"\nbackends = [\"sqlite\"]\n\
         [nodes.alice]\n[nodes.bob]\n\
         [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 1000000\n\
         [[steps]]\npay = { from = \"alice\", to = \"bob\", amount = 1000 }\n",
    )
}

/// A pid that belonged to a process that has ended.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait");
    pid
}

fn current_image() -> String {
    let images = docker_text(&[
        "images",
        "--filter",
        "label=dlp-harness.image",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    images
        .lines()
        .next()
        .expect("an image was built")
        .to_string()
}

#[test]
fn without_a_daemon_the_run_cannot_start_and_says_how_to_fix_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario(dir.path());
    let (out, took) = run_harness(
        &["run", file.to_str().expect("utf8"), "--driver", "container"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("answered in {took:?}");
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("no Docker daemon answers"), "{stderr}");
    assert!(stderr.contains("--driver process"), "{stderr}");
}

#[test]
#[file_serial(docker_daemon)]
fn leftovers_of_dead_runs_are_removed_kept_containers_stay_and_the_image_is_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario(dir.path());
    let run = |extra: &[&str]| {
        let mut args = vec!["run", file.to_str().expect("utf8"), "--driver", "container"];
        args.extend_from_slice(extra);
        let (out, _) = run_harness(&args, &[], dir.path());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[]);
    let image = current_image();
    let ours = |label: &str| {
        docker_text(&["ps", "-aq", "--filter", &format!("label={label}")])
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };

    // A container of a harness process that died without cleaning up, and a kept one.
    let dead = dead_pid().to_string();
    let leftover = docker_text(&[
        "create",
        "--label",
        &format!("dlp-harness.owner-pid={dead}"),
        "--label",
        "dlp-harness.run=leftover-test",
        &image,
        "/dlp-node",
        "--help",
    ]);
    let kept = docker_text(&[
        "create",
        "--label",
        &format!("dlp-harness.owner-pid={dead}"),
        "--label",
        "dlp-harness.keep=1",
        &image,
        "/dlp-node",
        "--help",
    ]);
    assert!(!leftover.is_empty() && !kept.is_empty());
    let dead_network = format!("dlp-harness-{dead}-0-1");
    assert!(
        docker(&["network", "create", &dead_network])
            .status
            .success()
    );

    run(&["--keep"]);
    let all = ours("dlp-harness.owner-pid");
    assert!(
        !all.iter().any(|id| leftover.starts_with(id.as_str())),
        "the dead run's container is gone: {all:?}"
    );
    assert!(
        all.iter().any(|id| kept.starts_with(id.as_str())),
        "the kept container stays: {all:?}"
    );
    let networks = docker_text(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        !networks.lines().any(|n| n == dead_network),
        "the dead run's network is gone: {networks}"
    );
    // The --keep run left its own containers (chain and both nodes), labelled as kept.
    let kept_now = ours("dlp-harness.keep");
    assert!(kept_now.len() >= 4, "{kept_now:?}");
    assert_eq!(current_image(), image, "same binaries, same image");
    let mut networks = Vec::new();
    for id in &kept_now {
        let names = docker_text(&[
            "inspect",
            "--format",
            "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}",
            id,
        ]);
        networks.extend(
            names
                .split_whitespace()
                .filter(|n| n.starts_with("dlp-harness-"))
                .map(str::to_string),
        );
    }
    let mut rm = vec!["rm", "-f"];
    rm.extend(kept_now.iter().map(String::as_str));
    assert!(docker(&rm).status.success());
    networks.sort();
    networks.dedup();
    for network in networks {
        let _ = docker(&["network", "rm", &network]);
    }
}

#[test]
#[file_serial(docker_daemon)]
fn a_node_that_dies_at_start_shows_the_end_of_its_log() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let run_dir = dir.path().join("run");
        std::fs::create_dir_all(&run_dir).expect("run dir");
        let mut driver = ContainerDriver::new();
        let (_, chain_url) = driver.start_chain(&run_dir).await.expect("chain");
        let spec = NodeSpec {
            name: "alice".into(),
            backend: Backend::Sqlite,
            seed: 1,
            audit: AuditSettings::default(),
            chain_url,
            home: run_dir.join("alice"),
            backups: BackupSettings::default(),
            forwarding: ForwardingSettings::default(),
            build: NodeBuild::Current,
        };
        driver.create_node(&spec).await.expect("home");
        // A config the node refuses: it exits at once.
        std::fs::write(
            spec.home.join("config.toml"),
            "[store]\nbackend = \"floppy\"\n",
        )
        .expect("break the config");
        let err = match driver.start_node(&spec).await {
            Ok(_) => panic!("a node with a broken config started"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("did not start"), "{err}");
        assert!(
            err.contains("floppy"),
            "the log tail names the problem: {err}"
        );
    });
}

/// The pooled containers (label `dlp-harness.pool`), by id.
fn pooled() -> Vec<String> {
    let mut ids: Vec<String> = docker_text(&["ps", "-q", "--filter", "label=dlp-harness.pool"])
        .lines()
        .map(str::to_string)
        .collect();
    ids.sort();
    ids
}

/// Every `node.log` under `dir` that says its node is ready.
fn ready_nodes(dir: &Path) -> usize {
    fn walk(dir: &Path, found: &mut usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.file_name().is_some_and(|n| n == "node.log")
                && std::fs::read_to_string(&path)
                    .is_ok_and(|t| t.contains(dlp_node_api::READY_LINE_PREFIX))
            {
                *found += 1;
            }
        }
    }
    let mut found = 0;
    walk(dir, &mut found);
    found
}

/// A harness killed in the middle of a run leaves its nodes running in pooled containers; the
/// next run claims those containers, kills what was left in them, and runs in them (same
/// containers, none created): its nodes bind the same ports, so a leftover would fail it.
#[test]
#[file_serial(docker_daemon)]
fn pooled_containers_are_reused_and_cleaned_of_what_a_killed_run_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let done = scenario(dir.path());
    // Blocks in wait_held (nothing sends bob a Shutdown) until the harness is killed.
    let stuck = write(
        dir.path(),
        "stuck.toml",
        "description = \"two nodes, then a wait that only ends at its deadline\"\n\
         backends = [\"sqlite\"]\n[nodes.alice]\n[nodes.bob]\n\
         [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 1000000\n\
         [[steps]]\nhold = { node = \"bob\", step = \"received:Shutdown\" }\n\
         [[steps]]\nwait_held = { node = \"bob\" }\n",
    );
    // No pooled container of an earlier test, so the next runs use exactly the stuck run's
    // (this test group runs alone: nobody else is using them).
    let earlier = pooled();
    if !earlier.is_empty() {
        let mut rm = vec!["rm", "-f"];
        rm.extend(earlier.iter().map(String::as_str));
        assert!(docker(&rm).status.success());
    }
    let runs = dir.path().join("stuck-runs");
    std::fs::create_dir_all(&runs).expect("runs");
    let mut child = harness()
        .args([
            "run",
            stuck.to_str().expect("utf8"),
            "--driver",
            "container",
        ])
        .env("DLP_HARNESS_RUN_DIR", &runs)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("harness");
    let deadline = Instant::now() + TIMEOUT;
    while ready_nodes(&runs) < 2 {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the stuck run ended before both nodes were up"
        );
        assert!(Instant::now() < deadline, "nodes not up within {TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL the harness");
    child.wait().expect("reap");
    let left = pooled();
    assert_eq!(
        left.len(),
        3,
        "the chain's and both nodes' containers: {left:?}"
    );

    let (out, _) = run_harness(
        &["run", done.to_str().expect("utf8"), "--driver", "container"],
        &[],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        pooled(),
        left,
        "the run used the pooled containers, created none"
    );
    // The run ended by killing its processes (it does not wait for them to be gone).
    for id in &left {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let top = docker_text(&["top", id, "-o", "pid,args"]);
            let processes: Vec<String> = top.lines().skip(1).map(str::to_string).collect();
            if processes.len() == 1 && processes[0].contains("dlp-container-init") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only the init is left in {id} after the run: {processes:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A restore killed at every rename and sync call, in the containers: strace inside the image
/// kills the restore where it runs (the node's container), and each following start comes up
/// on the old store or the complete restored one (counts printed; see
/// `integration::killed_restores` for the process driver).
#[test]
#[file_serial(docker_daemon)]
fn a_restore_killed_at_every_rename_and_sync_leaves_one_whole_store_in_containers() {
    for backend in [Backend::Rocksdb, Backend::Sqlite] {
        testkit::killed::check(&testkit::killed::kill_all(
            "two_node_direct.toml",
            dlp_harness::capability::DriverKind::Container,
            backend,
        ));
    }
}
