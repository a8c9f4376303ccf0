# SPDX-License-Identifier: Apache-2.0
# Shared helpers for integration suites (sourced, not run).
#
# Every suite: creates its own temp dir, starts the processes it needs on
# loopback, records their PIDs, and tears everything down in an EXIT trap.
# Results are TAP-like lines "ok - <suite>/<name>" / "not ok - ..." counted
# by tests/run.sh.

set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${SLUICE_BIN:-$ROOT/build/test/bin}
[[ $BIN = /* ]] || BIN=$ROOT/$BIN
SUITE=${SUITE:-$(basename "$0" .sh)}
TMP=$(mktemp -d "/tmp/sluice-$SUITE.XXXXXX")
PIDS=()
FAILS=0

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	[[ -n ${KEEP_TMP:-} ]] && echo "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT

ok() { echo "ok - $SUITE/$1"; }
not_ok() {
	echo "not ok - $SUITE/$1"
	shift
	[[ $# -gt 0 ]] && printf '    %s\n' "$@"
	FAILS=$((FAILS + 1))
}
# check NAME CMD...: ok when CMD succeeds.
check() {
	local name=$1
	shift
	if "$@" >"$TMP/check.out" 2>&1; then ok "$name"; else not_ok "$name" "$(tail -5 "$TMP/check.out")"; fi
}
# expect_eq NAME ACTUAL EXPECTED
expect_eq() {
	if [[ "$2" == "$3" ]]; then ok "$1"; else not_ok "$1" "expected: $3" "actual:   $2"; fi
}
# expect_match NAME TEXT REGEX
expect_match() {
	if [[ "$2" =~ $3 ]]; then ok "$1"; else not_ok "$1" "expected to match: $3" "actual: $2"; fi
}

# The system interpreter starts in milliseconds; a pyenv shim can take a second.
PY=$(command -v /usr/bin/python3 || command -v python3)
free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_control [extra flags...]: starts sluice-control on a free loopback
# port with a memory store unless flags say otherwise; sets CONTROL_PID,
# CONTROL_URL, KUBECONFIG.
start_control() {
	local port
	port=$(free_port)
	CONTROL_URL="http://127.0.0.1:$port"
	"$BIN/sluice-control" --listen "127.0.0.1:$port" --service-cidr 198.18.128.0/20 \
		--cluster-cidr 198.18.64.0/18 \
		--log-level warn "$@" >>"$TMP/control.log" 2>&1 &
	CONTROL_PID=$!
	PIDS+=("$CONTROL_PID")
	for _ in $(seq 100); do
		if curl -sf "$CONTROL_URL/readyz" >/dev/null 2>&1; then break; fi
		if ! kill -0 "$CONTROL_PID" 2>/dev/null; then
			echo "sluice-control exited early:" >&2
			cat "$TMP/control.log" >&2
			return 1
		fi
		sleep 0.05
	done
	curl -sf "$CONTROL_URL/readyz" >/dev/null || { cat "$TMP/control.log" >&2; return 1; }
	KUBECONFIG=$TMP/kubeconfig
	cat >"$KUBECONFIG" <<KC
apiVersion: v1
kind: Config
clusters:
- name: sluice
  cluster:
    server: $CONTROL_URL
contexts:
- name: sluice
  context:
    cluster: sluice
    user: sluice
current-context: sluice
users:
- name: sluice
  user: {}
KC
	export KUBECONFIG
}

stop_control() {
	kill -TERM "$CONTROL_PID" 2>/dev/null
	wait "$CONTROL_PID" 2>/dev/null
}

# Debian's kubectl (v1.20), unpacked by make deps.
KUBECTL=${KUBECTL:-$ROOT/build/deps/kubectl-1.20/usr/bin/kubectl}
kc() { "$KUBECTL" --cache-dir "$TMP/kcache" "$@"; }

finish() {
	exit $((FAILS > 0))
}
