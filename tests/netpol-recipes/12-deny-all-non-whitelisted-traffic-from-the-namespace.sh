# SPDX-License-Identifier: Apache-2.0
# Recipe 12: DENY all non-whitelisted traffic from a namespace (default, podSelector {},
# Egress, `egress: []`): all egress from default's pods, DNS included.
# Sourced by tests/integration/netpol_recipes.sh.
#   n1: default/a, other12/c     n2: default/b
{
	ns other12 'purpose: client'
	pod default a n1 'app: a'
	pod default b n2 'app: b'
	pod other12 c n1 'app: c'
} | apply pods
ready default/a default/b other12/c

apply default-deny-all-egress <<'Y'
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: default-deny-all-egress
  namespace: default
spec:
  policyTypes:
  - Egress
  podSelector: {}
  egress: []
Y
changed
denied in-namespace-http-denied default/a http default/b
denied in-namespace-udp-denied default/b udp default/a
denied other-namespace-http-denied default/a http other12/c
denied other-namespace-udp-denied default/b udp other12/c
dns_denied dns-udp-denied default/a udp
dns_denied dns-tcp-denied default/b tcp
reach external-denied default/a tcp "$EXT_IP" 80 '^dropped$'
# Egress-only: default's pods still accept connections; other namespaces' egress is open.
allowed ingress-untouched-http other12/c http default/a
allowed ingress-untouched-udp other12/c udp default/b
dns_allowed other-namespace-dns other12/c udp
late_egress late-pod-first-packet-denied default/late n2 'app: late' http other12/c dropped
clean default other12
