#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The expected reachability matrix of a case and its comparison with the observed one, in
the style of the upstream e2e tests (kubernetes test/e2e/network/netpol: truth tables of
every source pod x destination pod, printed as expected / observed / comparison on failure).

    matrix.py check TITLE SPECS PODS RULES OBSERVED

SPECS: tcp/80,udp/81,... ; PODS: a file of pod names (x/a ...) in table order; RULES: the
expectation lines of the case, applied in order to an all-allowed matrix, each
"FROM TO allow|deny [SPEC...]": FROM and TO are shell patterns on NS/POD ("*", "x/*",
"*/a", "x/a"), several joined by commas; the SPECs limit a rule to those port/protocols.
OBSERVED: mprobe.py's lines prefixed with the source pod: "FROM TO SPEC VERDICT [detail]".

A pod to itself is not compared (upstream ignores loopback too: traffic to the pod's own
address never leaves its netns). An observed verdict other than "ok" (allowed) or
"dropped" (denied) fails its cell whatever was expected: a refused connection or a reply
from the wrong pod is a broken lab, not enforcement. Exit status 0 when every cell
matches, 1 otherwise; prints one summary line per SPEC and, for a SPEC that does not
match, the three tables and the unexpected verdicts."""
import fnmatch
import sys


def matches(pats, name):
    return any(fnmatch.fnmatchcase(name, p) for p in pats.split(","))


def expected(pods, specs, rules):
    exp = {s: {(f, t): True for f in pods for t in pods} for s in specs}
    for n, line in enumerate(rules, 1):
        w = line.split()
        if len(w) < 3 or w[2] not in ("allow", "deny"):
            raise SystemExit("matrix.py: rule %d '%s': expected FROM TO allow|deny [SPEC...]"
                             % (n, line))
        only = w[3:]
        for s in only:
            if s not in specs:
                raise SystemExit("matrix.py: rule %d names %s, not probed in %s" % (n, s, specs))
        for s in only or specs:
            for f in pods:
                for t in pods:
                    if matches(w[0], f) and matches(w[1], t):
                        exp[s][(f, t)] = w[2] == "allow"
    return exp


def table(pods, cell):
    lines = ["-\t" + "\t".join(pods)]
    for f in pods:
        lines.append(f + "\t" + "\t".join("-" if f == t else cell(f, t) for t in pods))
    return "\n".join(lines)


def main():
    if len(sys.argv) != 7 or sys.argv[1] != "check":
        print(__doc__, file=sys.stderr)
        return 2
    title, specs = sys.argv[2], sys.argv[3].split(",")
    pods = open(sys.argv[4]).read().split()
    rules = [l.strip() for l in open(sys.argv[5]) if l.strip() and not l.startswith("#")]
    exp = expected(pods, specs, rules)
    obs = {}
    for line in open(sys.argv[6]):
        w = line.split(None, 3)
        if len(w) >= 4:
            obs[(w[0], w[1], w[2])] = w[3].strip()
    bad = 0
    for s in specs:
        def ok(f, t):
            v = obs.get((f, t, s), "missing")
            return v in ("ok", "dropped") and (v == "ok") == exp[s][(f, t)]

        cells = [(f, t) for f in pods for t in pods if f != t]
        wrong = [c for c in cells if not ok(*c)]
        print("# %s %s: reachability correct:%d, incorrect:%d, result=%s"
              % (title, s, len(cells) - len(wrong), len(wrong), "true" if not wrong else "false"))
        if not wrong:
            continue
        bad += 1

        def show(v):
            return "." if v == "ok" else "X" if v == "dropped" else "?"
        print("expected (. allowed, X denied, - loopback: not compared):")
        print(table(pods, lambda f, t: "." if exp[s][(f, t)] else "X"))
        print("observed (? neither answered nor dropped):")
        print(table(pods, lambda f, t: show(obs.get((f, t, s), "missing"))))
        print("comparison (. matches, X differs):")
        print(table(pods, lambda f, t: "." if ok(f, t) else "X"))
        for f, t in wrong:
            print("%s -> %s %s: expected %s, observed %s"
                  % (f, t, s, "allowed" if exp[s][(f, t)] else "denied",
                     obs.get((f, t, s), "missing")))
    return 1 if bad else 0


sys.exit(main())
