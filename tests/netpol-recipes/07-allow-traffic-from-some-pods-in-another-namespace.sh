# SPDX-License-Identifier: Apache-2.0
# Recipe 07: ALLOW traffic from some pods in another namespace (namespaceSelector
# team=operations AND podSelector type=monitoring in one peer).
# Sourced by tests/integration/netpol_recipes.sh.
#   n1: default/web, other/test (no type)     n2: default/test, default/mon (type=monitoring),
#       other/mon (type=monitoring)
{
	ns other 'team: operations'
	pod default web n1 'app: web'
	pod default test n2 'run: test'
	pod default mon n2 'type: monitoring'
	pod other test n1 'run: test'
	pod other mon n2 'type: monitoring'
} | apply pods
ready default/web default/test default/mon other/test other/mon

apply web-allow-all-ns-monitoring <<'Y'
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-allow-all-ns-monitoring
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
    - from:
      - namespaceSelector:     # chooses all pods in namespaces labelled with team=operations
          matchLabels:
            team: operations  
        podSelector:           # chooses pods with type=monitoring
          matchLabels:
            type: monitoring
Y
changed
denied default-unlabelled-denied default/test http default/web
denied default-monitoring-denied default/mon http default/web
denied default-monitoring-udp-denied default/mon udp default/web
denied other-unlabelled-denied other/test http default/web
denied other-unlabelled-udp-denied other/test udp default/web
allowed other-monitoring-http-allowed other/mon http default/web
allowed other-monitoring-udp-allowed other/mon udp default/web
allowed other-monitoring-tcp-allowed other/mon tcp default/web
allowed egress-untouched default/web udp other/test
late_ingress late-pod-isolated default/web-late n2 'app: web' default/mon http
clean default other
