#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install every Debian package Sluice needs. Idempotent and quick when all are
# present: apt-get update runs only when something is missing.
#
# kubectl: Debian's kubernetes-client (v1.20) is the reference client the tests
# drive. Some machines already own /usr/bin/kubectl through another package, so
# we never install it system-wide: the .deb is unpacked into build/deps/.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  build-essential pkg-config clang llvm
  libjson-c-dev libevent-dev libcurl4-openssl-dev libsqlite3-dev sqlite3
  libbpf-dev bpftool libelf-dev zlib1g-dev libnl-3-dev libnl-route-3-dev libmnl-dev libnftnl-dev libnl-genl-3-dev
  libclang-rt-14-dev
  etcd-server etcd-client
  bind9-dnsutils knot nsd unbound dnsperf iproute2 iputils-ping nftables iptables conntrack curl jq hyperfine gnuplot-nox
  clang-format clang-tidy cppcheck
  nodejs
  # tests/integration/cni_runtimes.sh: sluice-cni under real runtimes (ctr run --cni,
  # podman --rootfs with the CNI backend), a static busybox as the containers' rootfs, and
  # the reference plugins chained after sluice-cni (prevResult handling).
  containerd runc podman busybox-static containernetworking-plugins
  # --dataplane ipvs keeps kube-proxy's KUBE-* ipsets (tests/unit/test_px_ipvs.c loads them).
  ipset
  # tools/bench/lab.sh: TCP throughput pod -> pod across lab nodes vs plain veth/bridge.
  iperf3
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# npm ships inside nodesource's nodejs; Debian's npm package conflicts with it.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

KDIR=build/deps/kubectl-1.20
if [[ ! -x $KDIR/usr/bin/kubectl ]]; then
  echo "deps: unpacking Debian kubernetes-client into $KDIR"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download -qq kubernetes-client >/dev/null 2>&1) || {
    apt-get update -qq && (cd "$tmp" && apt-get download -qq kubernetes-client)
  }
  mkdir -p "$KDIR"
  dpkg-deb -x "$tmp"/kubernetes-client_*.deb "$KDIR"
fi

# @kubernetes/client-node for the second independent client test.
NDIR=build/deps/node
if [[ ! -d $NDIR/node_modules/@kubernetes/client-node ]]; then
  echo "deps: installing @kubernetes/client-node into $NDIR"
  mkdir -p "$NDIR"
  cp tests/clients/package.json "$NDIR/"
  (cd "$NDIR" && npm install --no-audit --no-fund --silent >/dev/null)
fi
