#!/usr/bin/env bash
# Two dlp-node processes against `dlp-chain serve`, driven by JSON-RPC alone (curl + jq):
# open a channel, pay, back up bob, stop him, restore, restart, reestablish, pay back.
#
#   cargo build --workspace --all-targets && examples/two-nodes.sh
#
# Uses 127.0.0.1 ports 8114 (chain), 8227/8228 (alice RPC/peer), 8237/8238 (bob RPC/peer) and a
# scratch directory (default /tmp/dlp-two-nodes, removed first). Every wait polls a condition
# with a 30 s deadline and says what it waited for if that runs out.
set -euo pipefail

BIN=${BIN:-${CARGO_TARGET_DIR:-target}/debug}
DIR=${DIR:-/tmp/dlp-two-nodes}
BACKEND=${BACKEND:-sqlite}
command -v jq >/dev/null || { echo "needs jq (apt-get install jq)" >&2; exit 2; }
[ -x "$BIN/dlp-node" ] && [ -x "$BIN/dlp-chain" ] || {
  echo "build first: cargo build --workspace --all-targets (looked in $BIN)" >&2; exit 2; }

rpc() { # rpc PORT METHOD [PARAMS-OBJECT]
  curl -sf -H 'content-type: application/json' "127.0.0.1:$1" \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":[${3:-{\}}]}"
}
wait_for() { # wait_for DESCRIPTION COMMAND...
  local what=$1; shift
  for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timed out after 30 s waiting for: $what" >&2; exit 1
}
channel() { rpc "$1" list_channels | jq -c ".result.channels[0] | $2"; }
state_is() { [ "$(channel "$1" .state.state_name)" = "\"$2\"" ]; }
payment_ok() { [ "$(rpc "$1" get_payment "{\"payment_hash\":\"$2\"}" | jq -r .result.status)" = Success ]; }
settled() { [ "$(channel 8227 .remote_commitment_number)" = "$(channel 8237 .local_commitment_number)" ] &&
            [ "$(channel 8237 '.pending_tlcs | length')" = 0 ]; }

rm -rf "$DIR" && mkdir -p "$DIR/alice" "$DIR/bob" && cd "$DIR"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
"$BIN/dlp-chain" serve --listen 127.0.0.1:8114 > chain.log 2>&1 & pids+=($!)
for spec in alice:8227:8228 bob:8237:8238; do
  IFS=: read -r name rpc_port peer_port <<<"$spec"
  cat > "$name/config.toml" <<CFG
[store]
backend = "$BACKEND"
[rpc]
listening_addr = "127.0.0.1:$rpc_port"
enabled_modules = ["info", "peer", "channel", "payment", "invoice", "graph", "admin", "dev"]
[fiber]
listening_addr = "127.0.0.1:$peer_port"
[chain]
rpc_url = "http://127.0.0.1:8114"
CFG
done
wait_for "dlp-chain" rpc 8114 get_tip
"$BIN/dlp-node" -d alice > alice.log 2>&1 & pids+=($!)
"$BIN/dlp-node" -d bob > bob.log 2>&1 & BOB_PID=$!; pids+=($BOB_PID)
wait_for "alice's RPC" rpc 8227 node_info
wait_for "bob's RPC" rpc 8237 node_info

ALICE_WALLET=0x$(rpc 8227 node_info | jq -r .result.wallet_pubkey)
BOB=0x$(rpc 8237 node_info | jq -r .result.pubkey)
BOB_ADDR=$(rpc 8237 node_info | jq -r '.result.addresses[0]')
echo "1. fund alice's wallet with 100 CKB, connect to bob, open a 50 CKB channel"
rpc 8114 fund "{\"pubkey\":\"$ALICE_WALLET\",\"amount\":\"0x2540be400\"}" >/dev/null
rpc 8227 connect_peer "{\"address\":\"$BOB_ADDR\"}" >/dev/null
rpc 8227 open_channel "{\"pubkey\":\"$BOB\",\"funding_amount\":\"0x12a05f200\"}" >/dev/null
wait_for "the funding transaction" sh -c "[ \"\$(curl -sf -H 'content-type: application/json' 127.0.0.1:8114 -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"get_transactions\",\"params\":[{}]}' | jq '[.result.transactions[] | select(.tx.kind.type==\"funding\")] | length')\" = 1 ]"
rpc 8114 mine '{"blocks":"0x1"}' >/dev/null
wait_for "alice ChannelReady" state_is 8227 ChannelReady
wait_for "bob ChannelReady" state_is 8237 ChannelReady
echo "   alice: $(channel 8227 '{state, local_balance, remote_balance}')"
announced() { [ "$(rpc "$1" graph_channels | jq '[.result.channels[] | select(.update_info_of_node1 != null and .update_info_of_node2 != null)] | length')" = 1 ]; }
wait_for "the channel announced to alice (gossip)" announced 8227
echo "   alice's graph: $(rpc 8227 graph_channels | jq -c '.result.channels[0] | {capacity, fee_rate_1: .update_info_of_node1.fee_rate, enabled_1: .update_info_of_node1.enabled}')"

echo "2. bob invoices 1 CKB, alice pays"
INVOICE=$(rpc 8237 new_invoice '{"amount":"0x5f5e100"}' | jq -r .result.invoice_address)
HASH=$(rpc 8227 send_payment "{\"invoice\":\"$INVOICE\"}" | jq -r .result.payment_hash)
wait_for "the payment" payment_ok 8227 "$HASH"
wait_for "both commitments settled" settled
echo "   bob:   $(channel 8237 '{state, local_balance, local_commitment_number, remote_commitment_number}')"

echo "3. back up bob, stop him, restore the backup, start him again"
rpc 8237 backup >/dev/null
BACKUP=$(ls -d bob/fiber/backups/* | tail -1)
kill -TERM "$BOB_PID"; wait "$BOB_PID" || true
"$BIN/dlp-node" -d bob --restore "$BACKUP" 2>>bob.log | sed 's/^/   /'
"$BIN/dlp-node" -d bob >> bob.log 2>&1 & BOB_PID=$!; pids+=($BOB_PID)
wait_for "bob's RPC" rpc 8237 node_info
echo "   bob after restore: $(channel 8237 .state)"

echo "4. alice reconnects: bob stays silent, audits her ReestablishChannel, resumes"
rpc 8227 connect_peer "{\"address\":\"$BOB_ADDR\"}" >/dev/null
wait_for "bob ChannelReady again" state_is 8237 ChannelReady
rpc 8237 dev_events | jq -c '.result.events[] | select(.type=="audit_passed" or .type=="audit_failed") | {type, local, remote, peer_local, peer_remote}' | sed 's/^/   /'

echo "5. bob pays 0.5 CKB back"
INVOICE=$(rpc 8227 new_invoice '{"amount":"0x2faf080"}' | jq -r .result.invoice_address)
HASH=$(rpc 8237 send_payment "{\"invoice\":\"$INVOICE\"}" | jq -r .result.payment_hash)
wait_for "the payment back" payment_ok 8237 "$HASH"
wait_for "both commitments settled" settled
echo "   bob:   $(channel 8237 '{state, local_balance}')"
echo "done; logs and stores in $DIR"
