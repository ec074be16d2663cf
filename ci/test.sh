#!/usr/bin/env bash
# The test command of README.md: install what a fresh machine lacks, then build and run every
# test of the workspace with nextest. Extra arguments go to `cargo nextest run`
# (e.g. `ci/test.sh --profile ci`, `ci/test.sh -E 'test(sqlite)'`).
set -euo pipefail
cd "$(dirname "$0")/.."

ci/install-deps.sh
cargo nextest run --workspace "$@"
