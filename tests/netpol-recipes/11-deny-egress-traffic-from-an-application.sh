# SPDX-License-Identifier: Apache-2.0
# Recipe 11: DENY egress traffic from an application (app=foo, Egress, `egress: []`), then
# the variant allowing DNS (53/UDP and 53/TCP to anywhere). DNS probes go to the cluster DNS
# (198.18.128.10) and straight to the upstream DNS outside the cluster (198.18.0.250:53);
# "the internet" is 198.18.0.250:80, where nothing listens (refused while open).
# Sourced by tests/integration/netpol_recipes.sh.
#   n1: default/web (app=web), default/test     n2: default/foo (app=foo)
{
	pod default web n1 'app: web'
	pod default test n1 'run: test'
	pod default foo n2 'app: foo'
} | apply pods
ready default/web default/test default/foo
dns_allowed open-dns-udp default/foo udp
reach open-external-refused default/foo tcp "$EXT_IP" 80 '^refused$'

apply foo-deny-egress <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: foo-deny-egress
spec:
  podSelector:
    matchLabels:
      app: foo
  policyTypes:
  - Egress
  egress: []
Y
changed
dns_denied dns-udp-denied default/foo udp
dns_denied dns-tcp-denied default/foo tcp
denied web-http-denied default/foo http default/web
denied web-udp-denied default/foo udp default/web
reach external-denied default/foo tcp "$EXT_IP" 80 '^dropped$'
ext_dns_denied external-dns-denied default/foo udp
# Egress-only: foo still accepts connections, and others' egress is untouched.
allowed ingress-untouched-http default/test http default/foo
allowed ingress-untouched-udp default/web udp default/foo
allowed others-egress-untouched default/test http default/web
late_egress late-pod-first-packet-denied default/foo-late n1 'app: foo' http default/web dropped

# The variant: DNS allowed (to any host on port 53), nothing else.
apply foo-deny-egress-dns <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: foo-deny-egress
spec:
  podSelector:
    matchLabels:
      app: foo
  policyTypes:
  - Egress
  egress:
  # allow DNS resolution
  - ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
Y
changed
dns_allowed dns-variant-udp-allowed default/foo udp
dns_allowed dns-variant-tcp-allowed default/foo tcp
# "any host that serves traffic over port 53": the upstream DNS outside the cluster too.
ext_dns_allowed dns-variant-external-dns-allowed default/foo udp
denied dns-variant-web-http-denied default/foo http default/web
denied dns-variant-web-udp-denied default/foo udp default/web
reach dns-variant-external-denied default/foo tcp "$EXT_IP" 80 '^dropped$'
allowed dns-variant-ingress-untouched default/test tcp default/foo
clean default
