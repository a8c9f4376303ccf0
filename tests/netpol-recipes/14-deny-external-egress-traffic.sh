# SPDX-License-Identifier: Apache-2.0
# Recipe 14: DENY external egress traffic (app=foo), in both versions of the recipe's YAML:
# the old one (53 to anywhere, plus every pod via `namespaceSelector: {}`) under which foo
# reaches web but not the outside, and the current one (DNS to kube-system's kube-dns only),
# under which web is denied too (the recipe's text still says otherwise).
# Sourced by tests/integration/netpol_recipes.sh.
#   n1: default/web (app=web)     n2: default/foo (app=foo), default/test
{
	pod default web n1 'app: web'
	pod default foo n2 'app: foo'
	pod default test n2 'run: test'
} | apply pods
ready default/web default/foo default/test
reach open-external-refused default/foo tcp "$EXT_IP" 80 '^refused$'

apply foo-deny-external-egress-old <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: foo-deny-external-egress
spec:
  podSelector:
    matchLabels:
      app: foo
  policyTypes:
  - Egress
  egress:
  - ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  - to:
    - namespaceSelector: {}
Y
changed
allowed old-web-http-allowed default/foo http default/web
allowed old-web-udp-allowed default/foo udp default/web
dns_allowed old-dns-udp-allowed default/foo udp
dns_allowed old-dns-tcp-allowed default/foo tcp
reach old-external-denied default/foo tcp "$EXT_IP" 80 '^dropped$'
ext_dns_allowed old-external-dns-allowed default/foo udp
allowed old-ingress-untouched default/test http default/foo

apply foo-deny-external-egress-current <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: foo-deny-external-egress
spec:
  podSelector:
    matchLabels:
      app: foo
  policyTypes:
  - Egress
  egress:
  - to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
      podSelector:
        matchLabels:
          k8s-app: kube-dns
    ports:
      - port: 53
        protocol: UDP
      - port: 53
        protocol: TCP
Y
changed
dns_allowed current-dns-udp-allowed default/foo udp
dns_allowed current-dns-tcp-allowed default/foo tcp
denied current-web-http-denied default/foo http default/web
denied current-web-udp-denied default/foo udp default/web
reach current-external-denied default/foo tcp "$EXT_IP" 80 '^dropped$'
ext_dns_denied current-external-dns-denied default/foo udp
allowed current-ingress-untouched default/test udp default/foo
late_egress late-pod-first-packet-denied default/foo-late n1 'app: foo' tcp default/web dropped
clean default
