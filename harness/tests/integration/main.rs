//! The harness's tests other than the scenario matrix (`tests/scenarios.rs`, libtest-mimic)
//! and the Docker daemon's (`tests/containers.rs`), as modules of one binary: every test binary
//! of this package links the node and RocksDB (~250 MB each), so concerns are modules, not
//! binaries. Tests are named by their module (`cli::...`, `sweep::...`).

#[path = "../testkit/mod.rs"]
mod testkit;

mod cli;
mod cli_damage;
mod cli_inspect;
mod cli_jobs;
mod damage_sweep;
mod explore;
mod gate;
mod killed_restores;
mod pins;
mod reconnect;
mod report;
mod shards;
mod sweep;
