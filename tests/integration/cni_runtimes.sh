#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# sluice-cni under real container runtimes: containerd 1.6 (`ctr run --cni --rootfs`) and
# podman 4 (`podman run --rootfs` with the CNI network backend) start busybox containers that
# sluice-cni wires, chained before the reference `bandwidth` plugin (which must find its host
# veth through sluice-cni's result: prevResult handling). For each runtime: eth0 holds an
# address of the conflist's subnet and the default route via the gateway, the node answers
# ping and HTTP to it, two containers reach each other, the result's cniVersion is the
# conflist's, and stopping/removing a container runs DEL (veth gone, address released).
#
#   this script, in a private mount namespace AND a network namespace of its own ("the node";
#   unshare --mount --net), so nothing it does is visible on the host:
#     tmpfs over /run, /var/lib and /opt; $TMP/net.d bind-mounted over /etc/cni/net.d;
#     /opt/cni/bin = a logging wrapper around $SLUICE_BIN/sluice-cni + Debian's bandwidth
#     containerd (own root/state/socket/config in $TMP, CRI plugin off), podman (--root,
#     --runroot, CONTAINERS_CONF, cgroupfs, vfs storage in $TMP)
#     +-- slXXXXXXXXXXXX <==veth==> eth0 198.18.66.x/32 (ctr containers, gw 198.18.66.1)
#     +-- slXXXXXXXXXXXX <==veth==> eth0 198.18.67.x/32 (podman containers, gw 198.18.67.1)
#
# Only 198.18.66.0/24 and 198.18.67.0/24; no route leaves the node namespace (it has only lo
# and the pod veths). Cleanup stops every container, the runtimes' helpers and containerd by
# recorded PID, removes the per-run cgroups; the namespaces vanish with the last process.
if [[ -z ${SLUICE_IN_CNIRT_NS:-} && $EUID -eq 0 ]]; then
	exec env SLUICE_IN_CNIRT_NS=1 unshare --mount --propagation private --net bash "$0" "$@"
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CNI=$BIN/sluice-cni
[[ -x $CNI ]] || { echo "not ok - $SUITE/binary ($CNI missing)"; exit 1; }
[[ $EUID -eq 0 ]] || { echo "skip - $SUITE/all # needs root"; exit 0; }

P=$$
NS=slcnirt$P # containerd namespace and podman container-name prefix, unique per run
RT=$TMP/rt
CTRD=$RT/containerd
ROOTFS=$RT/rootfs
LOG=$RT/cnilog # the wrapper's per-invocation record
IPAM=$RT/ipam
CTR_SOCK=$CTRD/c.sock
CTRD_PID=
CTR_RUNS=()   # ctr ids started
PODMAN_RUNS=() # podman names started
MOUNTED=0

rt_cleanup() {
	local id pid f d
	if [[ -n $CTRD_PID ]]; then
		for id in "${CTR_RUNS[@]}"; do
			ctr_ task kill -s KILL "$id" >/dev/null 2>&1
		done
		sleep 0.5
		for id in "${CTR_RUNS[@]}"; do
			ctr_ task delete "$id" >/dev/null 2>&1
			ctr_ container delete "$id" >/dev/null 2>&1
		done
	fi
	for id in "${PODMAN_RUNS[@]}"; do
		podman_ rm -f -t 0 "$id" >/dev/null 2>&1
	done
	# Helpers the runtimes daemonized (shims, conmon) exit once their containers are gone;
	# any that did not are killed by the PID they recorded.
	for f in $(find /run/containerd "$CTRD" "$RT/podman" -name 'shim.pid' -o -name 'conmon.pid' 2>/dev/null); do
		pid=$(cat "$f" 2>/dev/null)
		[[ $pid =~ ^[0-9]+$ ]] && kill -KILL "$pid" 2>/dev/null
	done
	if [[ -n $CTRD_PID ]]; then
		kill -TERM "$CTRD_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$CTRD_PID" 2>/dev/null
		wait "$CTRD_PID" 2>/dev/null
	fi
	# runc makes /<ns>/<id> (containerd) and /<ns>-podman/... (--cgroup-parent) in every
	# controller; the leaves go with the containers, the parents are removed here.
	for d in /sys/fs/cgroup/*/"$NS" /sys/fs/cgroup/*/"$NS"-podman; do
		[[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	cleanup
}
trap rt_cleanup EXIT

CTR=(ctr --address "$CTR_SOCK" -n "$NS")
PODMAN=(env "CONTAINERS_CONF=$RT/podman/containers.conf" "CONTAINERS_STORAGE_CONF=$RT/podman/storage.conf"
	podman --root "$RT/podman/root" --runroot "$RT/podman/runroot" --cgroup-manager cgroupfs)
ctr_() { "${CTR[@]}" "$@"; }
podman_() { "${PODMAN[@]}" "$@"; }
jget() { printf '%s' "$1" | jq -r "$2" 2>/dev/null; }
skip() { echo "skip - $SUITE/$1 # $2"; }

# --- the sandbox: fresh /run, /var/lib, /opt and /etc/cni/net.d in this mount namespace ----
setup_sandbox() {
	mkdir -p "$RT"/{net.d,bin,run,varlib,opt} "$LOG" "$IPAM" || return 1
	mount -t tmpfs -o mode=755 sluice-cnirt /run || return 1
	mount -t tmpfs -o mode=755 sluice-cnirt /var/lib || return 1
	mount -t tmpfs -o mode=755 sluice-cnirt /opt || return 1
	mkdir -p /run/netns /var/lib/cni /opt/cni/bin || return 1
	[[ -d /etc/cni/net.d ]] || { echo "no /etc/cni/net.d to mount over" >&2; return 1; }
	mount --bind "$RT/net.d" /etc/cni/net.d || return 1
	ip link set lo up
}

# The real plugin behind a wrapper that records each call (command, container, netns, the
# config it got and the result it gave) so the test can see what the runtime asked for.
install_plugins() {
	cat >/opt/cni/bin/sluice-cni <<EOF || return 1
#!/bin/sh
n=\$(date +%s%N).\$\$.\${CNI_COMMAND:-none}
cat >"$LOG/\$n.in"
"$CNI" <"$LOG/\$n.in" >"$LOG/\$n.out" 2>>"$LOG/stderr"
rc=\$?
cat "$LOG/\$n.out"
echo "\$n \${CNI_COMMAND:-} \${CNI_CONTAINERID:-} \${CNI_IFNAME:-} netns=\${CNI_NETNS:-} rc=\$rc" >>"$LOG/calls"
exit \$rc
EOF
	chmod 755 /opt/cni/bin/sluice-cni
	[[ -z $CHAIN ]] || cp /usr/lib/cni/bandwidth /opt/cni/bin/
}

# conflist NAME VERSION SUBNET: sluice-cni, then bandwidth (ingress shaping on the host veth
# that bandwidth finds only through prevResult.interfaces).
conflist() {
	local chained=
	[[ -z $CHAIN ]] || chained=',
 {"type":"bandwidth","ingressRate":100000000,"ingressBurst":1000000}'
	cat <<EOF
{"cniVersion":"$2","name":"$1","plugins":[
 {"type":"sluice-cni","mtu":1400,"ipam":{"type":"sluice","subnet":"$3","dataDir":"$IPAM"}}$chained]}
EOF
}

# A static busybox rootfs per container (each serves its own name over HTTP).
make_rootfs() {
	local d=$ROOTFS/$1 a
	mkdir -p "$d"/{bin,proc,sys,dev,etc,tmp,www,run} || return 1
	cp "$BUSYBOX" "$d/bin/busybox" || return 1
	for a in sh ip ping wget httpd sleep cat hostname; do ln -sf busybox "$d/bin/$a"; done
	echo "root:x:0:0:root:/:/bin/sh" >"$d/etc/passwd"
	echo "root:x:0:" >"$d/etc/group"
	echo "$1" >"$d/www/index.html"
	# Debian's static busybox is glibc: wget looks up "http" with getservbyname and
	# segfaults when /etc/services is missing (and with -T, hence `timeout` around exec).
	echo "http 80/tcp www" >"$d/etc/services"
}

# attachment_of ID -> "IP HOSTVETH VERSION" from the plugin's own ADD result for ID.
attachment_of() {
	local f
	f=$(grep " ADD $1 " "$LOG/calls" | tail -1 | cut -d' ' -f1)
	[[ -n $f ]] || return 1
	jq -r '"\(.ips[0].address|split("/")[0]) \(.interfaces[0].name) \(.cniVersion)"' "$LOG/$f.out"
}

# --- what this machine has ----------------------------------------------------------------
BUSYBOX=$(command -v busybox)
if [[ -z $BUSYBOX ]] || ldd "$BUSYBOX" >/dev/null 2>&1; then
	skip all "no static busybox for the containers' rootfs (busybox-static, scripts/deps.sh)"
	finish
fi
HAVE_CTR=1 HAVE_PODMAN=1
for t in containerd ctr containerd-shim-runc-v2 runc; do
	command -v "$t" >/dev/null || HAVE_CTR="$t not installed (containerd, runc: scripts/deps.sh)"
done
for t in podman conmon runc; do
	command -v "$t" >/dev/null || HAVE_PODMAN="$t not installed (podman: scripts/deps.sh)"
done
# Chaining proves prevResult handling, but only where the reference plugins exist.
CHAIN=1
if [[ ! -x /usr/lib/cni/bandwidth ]]; then
	CHAIN=
	skip chain "no /usr/lib/cni/bandwidth (containernetworking-plugins): sluice-cni runs alone"
fi

if ! setup_sandbox; then
	not_ok sandbox "could not build the private /run, /var/lib, /opt, /etc/cni/net.d"
	finish
fi
install_plugins || { not_ok plugins "cannot install the plugin wrapper"; finish; }
ok sandbox

# --- containerd: ctr run --cni --rootfs ----------------------------------------------------
# ctr's --cni reads the first conflist of /etc/cni/net.d and plugins from /opt/cni/bin (both
# fixed in containerd 1.6, hence the mounts), names the attachment <namespace>-<id>, runs
# ADD on /proc/<pid>/ns/net before the task starts and DEL (netns "") when a foreground
# `ctr run --rm` sees its task exit.
start_containerd() {
	mkdir -p "$CTRD"/{root,state} || return 1
	cat >"$CTRD/config.toml" <<EOF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTR_SOCK"
[ttrpc]
  address = "$CTR_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
	containerd --config "$CTRD/config.toml" >"$CTRD/log" 2>&1 &
	CTRD_PID=$!
	for _ in $(seq 100); do
		ctr_ version >/dev/null 2>&1 && return 0
		kill -0 "$CTRD_PID" 2>/dev/null || break
		sleep 0.1
	done
	return 1
}

# ctr_start ID: `ctr run --rm --cni` in the background (its PID in CTR_PID_<ID>), waits for
# the task to run.
declare -A CTR_PID
ctr_start() {
	local id=$1
	make_rootfs "$id" || return 1
	CTR_RUNS+=("$id")
	ctr_ run --rm --cni --rootfs "$ROOTFS/$id" "$id" /bin/busybox httpd -f -p 80 -h /www \
		</dev/null >"$RT/ctr-$id.log" 2>&1 &
	CTR_PID[$id]=$!
	for _ in $(seq 100); do
		[[ $(ctr_ task ls 2>/dev/null | awk -v id="$id" '$1==id {print $3}') == RUNNING ]] && return 0
		kill -0 "${CTR_PID[$id]}" 2>/dev/null || break
		sleep 0.1
	done
	return 1
}
ctr_taskpid() { ctr_ task ls 2>/dev/null | awk -v id="$1" '$1==id {print $2}'; }

# --- podman: run --rootfs with the CNI backend ---------------------------------------------
# podman creates the netns under /run/netns (our tmpfs), calls the conflist named by
# --network from network_config_dir with plugins from cni_plugin_dirs, and runs DEL when the
# container stops (cleanup) or is removed.
setup_podman() {
	mkdir -p "$RT/podman"/{root,runroot,tmp} || return 1
	cat >"$RT/podman/storage.conf" <<EOF
[storage]
driver = "vfs"
runroot = "$RT/podman/runroot"
graphroot = "$RT/podman/root"
EOF
	cat >"$RT/podman/containers.conf" <<EOF
[containers]
netns = "bridge"
# With --ulimit host and no defaults the containers inherit podman's limits. Otherwise podman
# asks runc for nofile=1048576 (and nproc from pid_max), above the hard limits this test may
# run with, and runc cannot raise them without CAP_SYS_RESOURCE: "error setting rlimit type 7".
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$RT/podman/events.log"
tmp_dir = "$RT/podman/tmp"
runtime = "runc"
conmon_path = ["/usr/bin/conmon"]
[network]
network_backend = "cni"
cni_plugin_dirs = ["/opt/cni/bin"]
network_config_dir = "/etc/cni/net.d"
EOF
}

# podman_start NAME [NETWORK]: `podman run -d` on the conflist named NETWORK (podnet), with
# --ulimit host (see setup_podman) and cgroups under /<NS>-podman (removed by cleanup).
podman_start() {
	local name=$NS-$1
	make_rootfs "$1" || return 1
	PODMAN_RUNS+=("$name")
	podman_ run -d --ulimit host --cgroup-parent "/$NS-podman" --name "$name" \
		--network "${2:-podnet}" --rootfs "$ROOTFS/$1" \
		/bin/busybox httpd -f -p 80 -h /www >"$RT/podman-$1.log" 2>&1
}
podman_id() { podman_ inspect -f '{{.Id}}' "$NS-$1" 2>/dev/null; }

# --- checks shared by both runtimes ---------------------------------------------------------
# wired R CID VERSION SUBNET_RE GW NAME LABEL EXEC...: the attachment CID (as the runtime
# names it) of container NAME is up; test names start with R/LABEL; EXEC runs a command
# inside the container. Sets A_IP, A_HV.
wired() {
	local r=$1 cid=$2 ver=$3 subnet_re=$4 gw=$5 name=$6 label=$7
	shift 7
	local att cache
	A_IP= A_HV=
	att=$(attachment_of "$cid") || { not_ok "$r/$label-add-called" "no ADD for $cid in $(cat "$LOG/calls" 2>/dev/null)"; return 1; }
	ok "$r/$label-add-called"
	read -r A_IP A_HV att <<<"$att"
	expect_eq "$r/$label-result-version" "$att" "$ver"
	# libcni caches the final result of the chain (bandwidth's, built on our prevResult).
	cache=/var/lib/cni/results/$(grep -l "\"containerId\":\"$cid\"" /var/lib/cni/results/* 2>/dev/null | head -1 | xargs -r basename)
	expect_eq "$r/$label-chain-result" "$(jq -r '"\(.result.cniVersion) \(.result.ips[0].address)"' "$cache" 2>/dev/null)" \
		"$ver $A_IP/32"
	expect_match "$r/$label-ip-in-subnet" "$A_IP" "$subnet_re"
	expect_match "$r/$label-eth0-addr" "$("$@" ip -4 -o addr show dev eth0 2>&1)" "inet $A_IP/32 "
	expect_match "$r/$label-default-route" "$("$@" ip route show 2>&1)" "default via $gw dev eth0"
	[[ -z $CHAIN ]] || expect_match "$r/$label-bandwidth-on-host-veth" \
		"$(tc qdisc show dev "$A_HV" 2>&1)" "qdisc tbf .*rate 100Mbit"
	check "$r/$label-node-pings" ping -c1 -W2 "$A_IP"
	expect_eq "$r/$label-node-http" "$(curl -s -m 3 "http://$A_IP/" 2>&1)" "$name"
}

# released R NAME CID IP HOSTVETH NET: DEL ran for CID (with the cached result as prevResult)
# and undid everything: host veth, node route, the address in network NET's store.
released() {
	local r=$1 name=$2 cid=$3 ip=$4 hv=$5 f
	expect_match "$r/$name-del-called" "$(grep " DEL $cid " "$LOG/calls" | tail -1)" " rc=0$"
	f=$(grep " DEL $cid " "$LOG/calls" | tail -1 | cut -d' ' -f1)
	expect_eq "$r/$name-del-prevresult" "$(jq -r '.prevResult.ips[0].address' "$LOG/$f.in" 2>/dev/null)" "$ip/32"
	check "$r/$name-del-veth-gone" bash -c "! ip link show $hv 2>/dev/null"
	check "$r/$name-del-ip-released" test ! -e "$IPAM/$6/$ip"
	check "$r/$name-del-node-route-gone" bash -c "[[ -z \$(ip route show $ip) ]]"
}

ipfile_count() { ls "$IPAM/$1" 2>/dev/null | grep -c '^198\.'; }

# tinyconf NAME NET24: a network with exactly one address (NET24.10), to see how the runtime
# reports sluice-cni's "no free address" and cleans up after the failed ADD.
tinyconf() {
	printf '{"cniVersion":"1.0.0","name":"%s","plugins":[{"type":"sluice-cni","ipam":{"type":"sluice","subnet":"%s.0/24","rangeStart":"%s.10","rangeEnd":"%s.10","dataDir":"%s"}}]}\n' \
		"$1" "$2" "$2" "$2" "$IPAM"
}

# refused R NAME CID LOGFILE NET: the runtime's ADD of CID failed with the plugin's own
# message, the runtime ran DEL for it, and NET still holds only the first container's address.
refused() {
	local r=$1 name=$2 cid=$3 log=$4 net=$5
	expect_match "$r/$name-error-shown" "$(cat "$log" 2>/dev/null)" \
		"no free address.*every address of the pod CIDR in network $net is in use"
	expect_match "$r/$name-add-failed" "$(grep " ADD $cid " "$LOG/calls" | tail -1)" " rc=1$"
	expect_match "$r/$name-del-after-failed-add" "$(grep " DEL $cid " "$LOG/calls" | tail -1)" " rc=0$"
	expect_eq "$r/$name-no-leak" "$(ipfile_count "$net")" 1
}

# === containerd ==============================================================================
conflist ctrnet 1.0.0 198.18.66.0/24 >"$RT/net.d/10-ctrnet.conflist"
if [[ $HAVE_CTR != 1 ]]; then
	skip containerd "$HAVE_CTR"
elif ! start_containerd; then
	skip containerd "containerd did not start: $(tail -3 "$CTRD/log" | tr '\n' ' ')"
elif ! ctr_start c1 || ! ctr_start c2; then
	not_ok ctr/run "ctr run --cni failed" "$(tail -5 "$RT"/ctr-c*.log 2>/dev/null)" "$(tail -3 "$LOG/stderr" 2>/dev/null)"
else
	ok ctr/run
	cx() { timeout 20 "${CTR[@]}" task exec --exec-id "x$RANDOM" "$1" /bin/busybox "${@:2}"; }
	wired ctr "$NS-c1" 1.0.0 '^198\.18\.66\.[0-9]+$' 198.18.66.1 c1 c1 cx c1
	C1_IP=$A_IP C1_HV=$A_HV
	wired ctr "$NS-c2" 1.0.0 '^198\.18\.66\.[0-9]+$' 198.18.66.1 c2 c2 cx c2
	C2_IP=$A_IP C2_HV=$A_HV
	# Pod to pod through the node (ip_forward stays 0 here: the plugin's per-veth flag).
	expect_eq ctr/c1-reaches-c2 "$(cx c1 wget -q -O- "http://$C2_IP/" 2>&1)" c2
	expect_eq ctr/c2-reaches-c1 "$(cx c2 wget -q -O- "http://$C1_IP/" 2>&1)" c1
	expect_match ctr/netns-is-task "$(grep " ADD $NS-c1 " "$LOG/calls")" "netns=/proc/[0-9]+/ns/net "

	# Stopping the task: the foreground `ctr run --rm` sees the exit and runs DEL.
	ctr_ task kill -s KILL c1 >/dev/null 2>&1
	wait "${CTR_PID[c1]}" 2>/dev/null
	released ctr c1 "$NS-c1" "$C1_IP" "$C1_HV" ctrnet
	check ctr/c1-cache-gone bash -c "! grep -lq '\"containerId\":\"$NS-c1\"' /var/lib/cni/results/* 2>/dev/null"
	expect_eq ctr/c2-unaffected "$(curl -s -m 3 "http://$C2_IP/" 2>&1)" c2

	# An older conflist version: the result is a 0.4.0 result.
	conflist ctrnet 0.4.0 198.18.66.0/24 >"$RT/net.d/10-ctrnet.conflist"
	if ctr_start c3; then
		wired ctr "$NS-c3" 0.4.0 '^198\.18\.66\.[0-9]+$' 198.18.66.1 c3 c3 cx c3
		expect_eq ctr/c3-result-ip-version "$(jq -r '.ips[0].version' "$LOG/$(grep " ADD $NS-c3 " "$LOG/calls" | cut -d' ' -f1).out")" 4
		C3_IP=$A_IP C3_HV=$A_HV
		ctr_ task kill -s KILL c3 >/dev/null 2>&1
		wait "${CTR_PID[c3]}" 2>/dev/null
		released ctr c3 "$NS-c3" "$C3_IP" "$C3_HV" ctrnet
	else
		not_ok ctr/c3-run "$(tail -5 "$RT/ctr-c3.log")"
	fi
	ctr_ task kill -s KILL c2 >/dev/null 2>&1
	wait "${CTR_PID[c2]}" 2>/dev/null
	released ctr c2 "$NS-c2" "$C2_IP" "$C2_HV" ctrnet
	expect_eq ctr/store-empty "$(ipfile_count ctrnet)" 0
	expect_eq ctr/containers-removed "$(ctr_ container ls -q 2>/dev/null | wc -l)" 0

	# A full network: the second container is refused with sluice-cni's error, cleanly.
	tinyconf ctrtiny 198.18.68 >"$RT/net.d/05-ctrtiny.conflist" # sorts first: ctr's pick
	if ctr_start c4; then
		ok ctr/tiny-first-runs
		ctr_start c5 && not_ok ctr/tiny-second-refused "c5 started in a one-address network"
		wait "${CTR_PID[c5]}" 2>/dev/null
		refused ctr tiny-second "$NS-c5" "$RT/ctr-c5.log" ctrtiny
		expect_eq ctr/tiny-first-still-serves "$(curl -s -m 3 http://198.18.68.10/ 2>&1)" c4
		ctr_ task kill -s KILL c4 >/dev/null 2>&1
		wait "${CTR_PID[c4]}" 2>/dev/null
		expect_eq ctr/tiny-store-empty "$(ipfile_count ctrtiny)" 0
	else
		not_ok ctr/tiny-first-runs "$(tail -5 "$RT/ctr-c4.log")"
	fi
	rm -f "$RT/net.d/05-ctrtiny.conflist"
fi

# === podman ==================================================================================
conflist podnet 1.0.0 198.18.67.0/24 >"$RT/net.d/20-podnet.conflist"
if [[ $HAVE_PODMAN != 1 ]]; then
	skip podman "$HAVE_PODMAN"
elif ! setup_podman; then
	not_ok podman/setup "cannot write podman's config"
elif ! podman_start p1 || ! podman_start p2; then
	not_ok podman/run "podman run failed" "$(tail -5 "$RT"/podman-p*.log 2>/dev/null)" "$(tail -3 "$LOG/stderr" 2>/dev/null)"
else
	ok podman/run
	px() { timeout 20 "${PODMAN[@]}" exec "$NS-$1" /bin/busybox "${@:2}"; }
	P1=$(podman_id p1) P2=$(podman_id p2)
	wired podman "$P1" 1.0.0 '^198\.18\.67\.[0-9]+$' 198.18.67.1 p1 p1 px p1
	P1_IP=$A_IP P1_HV=$A_HV
	wired podman "$P2" 1.0.0 '^198\.18\.67\.[0-9]+$' 198.18.67.1 p2 p2 px p2
	P2_IP=$A_IP P2_HV=$A_HV
	expect_eq podman/p1-reaches-p2 "$(px p1 wget -q -O- "http://$P2_IP/" 2>&1)" p2
	expect_eq podman/p2-reaches-p1 "$(px p2 wget -q -O- "http://$P1_IP/" 2>&1)" p1
	expect_match podman/netns-is-named "$(grep " ADD $P1 " "$LOG/calls")" "netns=/run/netns/[^ ]+ "
	expect_match podman/inspect-ip "$(podman_ inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$NS-p1" 2>&1)" "^$P1_IP$"

	# stop tears the network down (DEL while the netns still exists) ...
	podman_ stop -t 1 "$NS-p1" >/dev/null 2>&1
	released podman p1 "$P1" "$P1_IP" "$P1_HV" podnet
	# ... start wires it again (a fresh ADD), rm -f tears it down for good.
	podman_ start "$NS-p1" >/dev/null 2>&1
	wired podman "$P1" 1.0.0 '^198\.18\.67\.[0-9]+$' 198.18.67.1 p1 p1-restart px p1
	expect_eq podman/p1-restart-adds "$(grep -c " ADD $P1 " "$LOG/calls")" 2
	P1_IP=$A_IP P1_HV=$A_HV
	podman_ rm -f -t 0 "$NS-p1" >/dev/null 2>&1
	released podman p1-rm "$P1" "$P1_IP" "$P1_HV" podnet
	podman_ rm -f -t 0 "$NS-p2" >/dev/null 2>&1
	released podman p2 "$P2" "$P2_IP" "$P2_HV" podnet
	expect_eq podman/store-empty "$(ipfile_count podnet)" 0

	# A full network: the second container is refused with sluice-cni's error, cleanly.
	tinyconf podtiny 198.18.69 >"$RT/net.d/30-podtiny.conflist"
	if podman_start p4 podtiny; then
		ok podman/tiny-first-runs
		podman_start p5 podtiny && not_ok podman/tiny-second-refused "p5 started in a one-address network"
		P5=$(podman_id p5)
		refused podman tiny-second "$P5" "$RT/podman-p5.log" podtiny
		expect_eq podman/tiny-first-still-serves "$(curl -s -m 3 http://198.18.69.10/ 2>&1)" p4
		podman_ rm -f -t 0 "$NS-p4" "$NS-p5" >/dev/null 2>&1
		expect_eq podman/tiny-store-empty "$(ipfile_count podtiny)" 0
	else
		not_ok podman/tiny-first-runs "$(tail -5 "$RT/podman-p4.log")"
	fi
	expect_eq podman/netns-removed "$(ls /run/netns | wc -l)" 0
fi

# === after both ==============================================================================
expect_eq no-veth-left "$(ip -o link show type veth 2>/dev/null | wc -l)" 0
expect_eq every-other-call-succeeded "$(grep -v -e " ADD $NS-c5 " -e " ADD ${P5:-none} " "$LOG/calls" 2>/dev/null | grep -vc ' rc=0$')" 0
if grep -q 'AddressSanitizer\|runtime error\|LeakSanitizer' "$LOG/stderr" 2>/dev/null; then
	not_ok plugin-stderr-clean "$(grep -m3 -A5 'AddressSanitizer\|runtime error\|LeakSanitizer' "$LOG/stderr")"
else
	ok plugin-stderr-clean
fi
finish
