#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `make bench` entry point (the Makefile builds release binaries into
# build/bin first). Runs each benchmark in turn; each writes its results
# (Markdown + CSV + PNG) under docs/benchmarks/ and prints the machine and the
# command to repeat it. Exit status is non-zero when any benchmark failed
# (a run with load-generator errors counts as failed).
set -euo pipefail
cd "$(dirname "$0")/../.."

export BIN=${BIN:-build/bin}
rc=0

echo "bench: control plane (sluice-control vs etcd), about 6 minutes on 2 cores"
tools/bench/control.sh || rc=1

echo "bench: datapath (socket LB via sluice-agent vs direct; programming, endpoint changes, memory), about 7 minutes on 2 cores, as root"
tools/bench/datapath.sh || rc=1

echo "bench: DNS (sluice-dns vs nsd, knot, unbound with dnsperf; create-to-resolve; memory), about 5 minutes on 2 cores"
tools/bench/dns.sh || rc=1

echo "bench: lab (3-node sluicectl lab: 100-pod start, CNI ADD/DEL vs ptp + host-local, pod-to-pod iperf3 and request rate vs plain veth and bridge), about 8 minutes on 2 cores, as root"
tools/bench/lab.sh || rc=1

echo "bench: scheduler (100 simulated nodes: pods/s and create-to-bind latency), about 2 minutes on 2 cores"
tools/bench/sched.sh || rc=1

echo "bench: NetworkPolicy compiler (1,000 pods x 1,000 policies and 5,000 x 2,000: compile time, changes, map size), under a minute"
tools/bench/netpol.sh || rc=1

echo "bench: service dataplanes, quick profile (bpf socket LB and per-packet, iptables, nftables, ipvs, direct at 1, 1k and 10k Services: conn/s, latency, sync, updates, memory), about 10 minutes on 2 cores, as root"
tools/bench/modes.sh --quick || rc=1

if ((rc)); then
	echo "bench: FAILED (see the messages above and docs/benchmarks/)" >&2
else
	echo "bench: done; results under docs/benchmarks/"
fi
exit $rc
