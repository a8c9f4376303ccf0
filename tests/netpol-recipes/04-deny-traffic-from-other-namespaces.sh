# SPDX-License-Identifier: Apache-2.0
# Recipe 04: DENY all traffic from other namespaces (secondary: every pod, from podSelector
# {} of its own namespace). Sourced by tests/integration/netpol_recipes.sh.
#   n1: secondary/web, default/test     n2: secondary/test, default/test2
{
	printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: secondary}\n---\n'
	pod secondary web n1 'app: web'
	pod secondary test n2 'run: test'
	pod default test n1 'run: test'
	pod default test2 n2 'run: test'
} | apply pods
ready secondary/web secondary/test default/test default/test2

apply deny-from-other-namespaces <<'Y'
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  namespace: secondary
  name: deny-from-other-namespaces
spec:
  podSelector:
    matchLabels:
  ingress:
  - from:
    - podSelector: {}
Y
changed
denied default-http-denied default/test http secondary/web
denied default-udp-denied default/test udp secondary/web
denied default-cross-node-denied default/test2 tcp secondary/web
allowed secondary-http-allowed secondary/test http secondary/web
allowed secondary-udp-allowed secondary/test udp secondary/web
allowed secondary-tcp-allowed secondary/test tcp secondary/web
# Ingress-only: secondary's pods still reach other namespaces.
allowed egress-untouched-http secondary/web http default/test2
allowed egress-untouched-udp secondary/test udp default/test
late_ingress late-pod-isolated secondary/late n2 'app: late' default/test2 http
clean default secondary
