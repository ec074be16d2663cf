#!/usr/bin/env bash
# Install what a fresh machine lacks to build and test this workspace:
#   - libclang (bindgen, used by librocksdb-sys, needs it at build time; the libclang1 runtime
#     alone fails with "stdbool.h not found")
#   - clang++ (the `clang` package): RocksDB's C++, most of a cold build, compiles faster with
#     it than with g++ (.cargo/config.toml sets CXX = clang++; override with CXX=g++)
#   - cargo-nextest (the test runner)
#   - jq and curl (examples/two-nodes.sh, the walkthrough of docs/walkthrough.md, which CI also runs)
#   - strace (node/tests/process/crash.rs kills a real restore at each rename/fsync through it)
#   - nft (nftables) and nsenter (util-linux): the container driver cuts partitions with drop
#     rules inside a container's network namespace. Docker itself is part of the machine: the
#     engine must be running (the container tests say so clearly when it is not).
#   - with --report only: chromium (Debian's package, ~100 MB with its libraries): .ci/run
#     opens a failing scenario's report.html in headless Chromium and checks its DOM (lanes,
#     arrows, the highlighted failing step). Neither the README's first command nor the tests
#     need it, so a first run on a fresh machine does not wait for it.
# Idempotent: does nothing when everything is present.
set -euo pipefail

report=false
for arg in "$@"; do
    case "$arg" in
        --report) report=true ;;
        *) echo "ci/install-deps: unknown option $arg (known: --report)" >&2; exit 2 ;;
    esac
done

need_apt=()
# The runtime package libclang1-* alone is not enough (bindgen then fails on "stdbool.h not
# found"): ask for the -dev package itself.
has_deb() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}
if ! has_deb libclang-dev; then
    need_apt+=(libclang-dev)
fi
if ! command -v g++ >/dev/null 2>&1; then
    need_apt+=(g++)
fi
if ! command -v clang++ >/dev/null 2>&1; then
    need_apt+=(clang)
fi
for tool in jq curl strace; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        need_apt+=("$tool")
    fi
done
if ! command -v nft >/dev/null 2>&1; then
    need_apt+=(nftables)
fi
if ! command -v nsenter >/dev/null 2>&1; then
    need_apt+=(util-linux)
fi
if $report && ! command -v chromium >/dev/null 2>&1; then
    need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "ci/install-deps: installing ${need_apt[*]}"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "ci/install-deps: installing cargo-nextest"
    cargo install --locked cargo-nextest
fi
