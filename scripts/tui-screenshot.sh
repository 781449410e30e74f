#!/usr/bin/env bash
# The terminal UI as text, from a real run: builds cqlsniff, replays a shipped capture in its terminal UI
# inside a detached tmux window of WIDTH×HEIGHT, waits until the UI shows ENDED (the whole file read),
# sends KEYS (tmux key names, one second apart) and prints the screen (tmux capture-pane -p).
# Usage: scripts/tui-screenshot.sh [WIDTH] [HEIGHT] [KEYS...]
#   scripts/tui-screenshot.sh 120 30                  # the main view (README.md, docs/tui.txt)
#   scripts/tui-screenshot.sh 80 24 g Enter PageDown  # the busiest connection's detail, one page down
# CAPTURE chooses the capture (default pcaps/gocql-1.7.0-v4-unbuffered-c64.pcap). Needs tmux.
set -euo pipefail
cd "$(dirname "$0")/.."
width=${1:-120} height=${2:-30}
shift $(($# < 2 ? $# : 2))
capture=${CAPTURE:-pcaps/gocql-1.7.0-v4-unbuffered-c64.pcap}
dir=$(mktemp -d)
sock="cqlsniff-shot-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true; rm -rf "$dir"' EXIT
go build -o "$dir/cqlsniff" ./cmd/cqlsniff
tmux -L "$sock" new-session -d -s shot -x "$width" -y "$height" "$dir/cqlsniff -r $capture; sleep 600"
for _ in $(seq 1 120); do
	sleep 0.5
	if tmux -L "$sock" capture-pane -p -t shot | grep -q ENDED; then break; fi
done
tmux -L "$sock" capture-pane -p -t shot | grep -q ENDED || { echo "the UI did not show ENDED" >&2; exit 1; }
sleep 1 # one more refresh: the rate "now" settles
for k in "$@"; do
	tmux -L "$sock" send-keys -t shot "$k"
	sleep 1
done
tmux -L "$sock" capture-pane -p -t shot
