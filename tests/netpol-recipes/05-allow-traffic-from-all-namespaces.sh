# SPDX-License-Identifier: Apache-2.0
# Recipe 05: ALLOW traffic to an application from all namespaces (secondary/app=web from
# namespaceSelector {}), also together with recipe 01's deny-all for app=web, which it
# overrides. Sourced by tests/integration/netpol_recipes.sh.
#   n1: secondary/web, default/test     n2: secondary/test, secondary/db
{
	printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: secondary}\n---\n'
	pod secondary web n1 'app: web'
	pod secondary test n2 'run: test'
	pod secondary db n2 'app: db'
	pod default test n1 'run: test'
} | apply pods
ready secondary/web secondary/test secondary/db default/test

apply web-deny-all <<'Y'
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  namespace: secondary
  name: web-deny-all
spec:
  podSelector:
    matchLabels:
      app: web
Y
changed
denied deny-first default/test http secondary/web
late_ingress late-pod-isolated secondary/web-late n2 'app: web' default/test http

apply web-allow-all-namespaces <<'Y'
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  namespace: secondary
  name: web-allow-all-namespaces
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - namespaceSelector: {}
Y
changed
allowed default-http-allowed default/test http secondary/web
allowed default-udp-allowed default/test udp secondary/web
allowed secondary-http-allowed secondary/test http secondary/web
allowed secondary-tcp-allowed secondary/test tcp secondary/web
allowed late-pod-allowed default/test udp secondary/web-late
# Only app=web is selected: db stays open, and web's egress is untouched.
allowed unselected-open default/test udp secondary/db
allowed egress-untouched secondary/web http secondary/db
clean default secondary
