# SPDX-License-Identifier: Apache-2.0
# The tables of docs/benchmarks/modes/README.md, from tools/bench/modes.sh's
# states (cfg TAB mode TAB why-not) and statistics ("cfg|mode|kind|run|field
# median min max q1 q3 n sum runs"). One awk run: thousands of small ones take
# minutes on a loaded 2-core VM.
BEGIN { FS = "\t" }
FNR == NR { st[$1 "|" $2] = $3; next }
{ k = $0; sub(/ .*/, "", k); S[k] = substr($0, length(k) + 2) }
function g(c, m, k, r, f, i,   a) { if (!((c "|" m "|" k "|" r "|" f) in S)) return ""; split(S[c "|" m "|" k "|" r "|" f], a, " "); return a[i] }
function fv(v, f) { return v == "" ? "n/a" : sprintf(f, v) }
function med(c, m, k, r, f, fm) { return fv(g(c, m, k, r, f, 1), fm) }
function cell(c, m, k, r, f, fm,   n) {
	n = g(c, m, k, r, f, 6)
	if (n == "" || n == 0) return "n/a"
	if (n == 1) return sprintf(fm, g(c, m, k, r, f, 1))
	return sprintf(fm " (" fm "-" fm ")", g(c, m, k, r, f, 1), g(c, m, k, r, f, 2), g(c, m, k, r, f, 3))
}
function label(m) { return m == "direct" ? "direct (no translation)" : m == "bpf-sock" ? "bpf, socket LB" : m == "bpf-pkt" ? "bpf, per-packet only" : m }
function why(c, m,   s) { s = st[c "|" m]; sub(/:.*/, "", s); return s }
function measured(c, m) { return st[c "|" m] == "" }
END {
	nc = split(configs, C, " ")
	nm = split(modes, M, " ")
	print "## 1. New connections per second (crr, closed loop, " conns " in flight, 16 random Services)"
	print ""
	print "Median of " reps " rounds (min-max). Config = Services:endpoints[:aff = ClientIP affinity]."
	print ""
	printf "| config |"; for (j = 1; j <= nm; j++) printf " %s |", label(M[j]); print ""
	printf "|---|"; for (j = 1; j <= nm; j++) printf "---|"; print ""
	for (i = 1; i <= nc; i++) {
		printf "| %s |", C[i]
		for (j = 1; j <= nm; j++) printf " %s |", measured(C[i], M[j]) ? cell(C[i], M[j], "run", "crr-closed-random", "rate", "%.0f") : why(C[i], M[j])
		print ""
	}
	print ""
	print "## 2. Latency at a fixed " rate " req/s (crr, open loop), ms, and CPU per request"
	print ""
	print "CPU per request, two ways: *client + server* = those processes' own user+system time;"
	print "*host sys+softirq* = system+irq+softirq jiffies of all CPUs from /proc/stat over the run,"
	print "which on this shared VM also counts other tenants' kernel time."
	print ""
	print "| config | mode | request p50 | p99 | p99.9 | connect p50 | p99 | p99.9 | CPU us/req (client + server) | CPU us/req (host sys+softirq) |"
	print "|---|---|---|---|---|---|---|---|---|---|"
	for (i = 1; i <= nc; i++) for (j = 1; j <= nm; j++) {
		c = C[i]; m = M[j]; if (!measured(c, m)) continue
		r = "crr-open-random"
		printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c, m, med(c, m, "run", r, "p50_ms", "%.2f"), med(c, m, "run", r, "p99_ms", "%.2f"),
			med(c, m, "run", r, "p999_ms", "%.2f"), med(c, m, "run", r, "conn_p50_ms", "%.2f"), med(c, m, "run", r, "conn_p99_ms", "%.2f"),
			med(c, m, "run", r, "conn_p999_ms", "%.2f"), cell(c, m, "cpu", r, "proc_us_per_req", "%.1f"), cell(c, m, "cpu", r, "host_us_per_req", "%.0f")
	}
	print ""
	print "## 2b. The dataplane's CPU per connection (crr, closed loop, 16 random Services)"
	print ""
	print "Kernel CPU (system+irq+softirq of all CPUs from /proc/stat over the run) per connection,"
	print "and that minus *direct*'s in the same configuration: the translation's own work. The"
	print "last column is its inverse, connections per CPU-second of dataplane work (n/a when the"
	print "difference is not above zero, i.e. within this machine's noise)."
	print ""
	print "| config | mode | kernel CPU us/conn | minus direct, us/conn | conn per dataplane CPU-s |"
	print "|---|---|---|---|---|"
	for (i = 1; i <= nc; i++) {
		c = C[i]; d = g(c, "direct", "cpu", "crr-closed-random", "host_us_per_req", 1)
		for (j = 1; j <= nm; j++) {
			m = M[j]; if (!measured(c, m)) continue
			h = g(c, m, "cpu", "crr-closed-random", "host_us_per_req", 1)
			dp = (h == "" || d == "" || m == "direct") ? "" : h - d
			printf "| %s | %s | %s | %s | %s |\n", c, m, cell(c, m, "cpu", "crr-closed-random", "host_us_per_req", "%.0f"),
				dp == "" ? "n/a" : sprintf("%.1f", dp), (dp == "" || dp <= 0) ? "n/a" : sprintf("%.0f", 1e6 / dp)
		}
	}
	print ""
	print "## 3. Keepalive (rr) and UDP with a fresh source port per request, closed loop"
	print ""
	print "rr: only conntrack's steady state runs, where the modes converge; udp: the DNS-like case."
	print "Conntrack counters: `conntrack -S` deltas in the node netns summed over all runs."
	print ""
	print "| config | mode | rr req/s | rr p99 ms | udp req/s | udp p99 ms | conntrack insert_failed / drop / early_drop |"
	print "|---|---|---|---|---|---|---|"
	for (i = 1; i <= nc; i++) for (j = 1; j <= nm; j++) {
		c = C[i]; m = M[j]; if (!measured(c, m)) continue
		printf "| %s | %s | %s | %s | %s | %s | %d / %d / %d |\n", c, m, cell(c, m, "run", "rr-closed-random", "rate", "%.0f"), med(c, m, "run", "rr-closed-random", "p99_ms", "%.2f"),
			cell(c, m, "run", "udp-closed-random", "rate", "%.0f"), med(c, m, "run", "udp-closed-random", "p99_ms", "%.2f"),
			g(c, m, "cpu", "*", "ct_insert_failed", 7), g(c, m, "cpu", "*", "ct_drop", 7), g(c, m, "cpu", "*", "ct_early_drop", 7)
	}
	print ""
	print "## 4. Full sync from empty"
	print ""
	print "Wall time from the agent's start (every object already in the API) until a connection"
	print "through the first and one through the last Service succeed (a new probe every 2 ms from the"
	print "client netns); the agent's own first sync (`sluice_agent_sync_duration_seconds`: model and"
	print "writes) and, for the legacy modes, its programming call (iptables-restore, nft transaction,"
	print "netlink) and rule count. Capped at " step " s."
	print ""
	print "| config | mode | start to last Service answering s | agent first sync s | programming call s | rules |"
	print "|---|---|---|---|---|---|"
	for (i = 1; i <= nc; i++) for (j = 1; j <= nm; j++) {
		c = C[i]; m = M[j]; if (m == "direct" || st[c "|" m] == "not in MODES") continue
		if (!measured(c, m)) { printf "| %s | %s | %s | | | |\n", c, m, st[c "|" m]; continue }
		printf "| %s | %s | %s | %s | %s | %s |\n", c, m, cell(c, m, "program", "-", "all_ok_s", "%.2f"), cell(c, m, "agent", "-", "sync_sum_s", "%.3f"),
			cell(c, m, "agent", "-", "program_call_s", "%.3f"), med(c, m, "agent", "-", "rules", "%.0f")
	}
	print ""
	print "## 5. One Service added with the others present"
	print ""
	print "`connbench update`: POST an EndpointSlice and its Service (the clock starts before the first"
	print "POST), then a new connection to the new ClusterIP every 1 ms until one completes. *API*: both"
	print "POSTs answered. The agent's sync time (sum over the syncs the change caused) and, for the"
	print "legacy modes, its last programming call come from /metrics. " samples " samples per mode and round."
	print ""
	print "| config | mode | end to end ms: median (min-max) | API ms | agent sync ms | programming call ms |"
	print "|---|---|---|---|---|---|"
	for (i = 1; i <= nc; i++) for (j = 1; j <= nm; j++) {
		c = C[i]; m = M[j]; if (m == "direct" || !measured(c, m)) continue
		printf "| %s | %s | %s | %s | %s | %s |\n", c, m, cell(c, m, "update", "-", "e2e_ms", "%.1f"), med(c, m, "update", "-", "api_ms", "%.1f"),
			med(c, m, "updagent", "-", "sync_ms", "%.2f"), med(c, m, "updagent", "-", "program_call_ms", "%.2f")
	}
	print ""
	print "## 6. Target position"
	print ""
	print "iptables walks KUBE-SERVICES rule by rule; nftables and bpf look the ClusterIP up in a hash."
	print "For iptables: the index of the first and the last Service's rule in KUBE-SERVICES (read back"
	print "with iptables-save). crr conn/s (closed loop) against each:"
	print ""
	print "| config | mode | KUBE-SERVICES rules | first at | last at | conn/s first | conn/s last | conn/s random |"
	print "|---|---|---|---|---|---|---|---|"
	for (i = 1; i <= nc; i++) for (j = 1; j <= nm; j++) {
		c = C[i]; m = M[j]; if (!measured(c, m)) continue
		printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", c, m, med(c, m, "position", "-", "rules", "%.0f"), med(c, m, "position", "-", "first_at", "%.0f"),
			med(c, m, "position", "-", "last_at", "%.0f"), cell(c, m, "run", "crr-closed-first", "rate", "%.0f"),
			cell(c, m, "run", "crr-closed-last", "rate", "%.0f"), cell(c, m, "run", "crr-closed-random", "rate", "%.0f")
	}
	print ""
	print "## 7. Memory"
	print ""
	print "Kernel memory deltas from /proc/meminfo between just before the agent started and after"
	print "programming (other tenants' allocations land in these too: small values are noise), the"
	print "agent's RSS, and the memlock of its pinned BPF maps (preallocated: the same at every scale;"
	print "the legacy modes open the bpf maps too)."
	print ""
	print "| config | mode | Slab kB | SUnreclaim kB | VmallocUsed kB | Percpu kB | agent RSS MiB | BPF memlock MiB |"
	print "|---|---|---|---|---|---|---|---|"
	for (i = 1; i <= nc; i++) for (j = 1; j <= nm; j++) {
		c = C[i]; m = M[j]; if (m == "direct" || !measured(c, m)) continue
		rss = g(c, m, "mem", "-", "rss_kb", 1); ml = g(c, m, "mem", "-", "bpf_memlock", 1)
		printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", c, m, med(c, m, "mem", "-", "Slab_kb", "%.0f"), med(c, m, "mem", "-", "SUnreclaim_kb", "%.0f"),
			med(c, m, "mem", "-", "VmallocUsed_kb", "%.0f"), med(c, m, "mem", "-", "Percpu_kb", "%.0f"),
			rss == "" ? "n/a" : sprintf("%.1f", rss / 1024), ml == "" ? "n/a" : sprintf("%.1f", ml / 1048576)
	}
	print ""
}
