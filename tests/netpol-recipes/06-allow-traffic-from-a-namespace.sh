# SPDX-License-Identifier: Apache-2.0
# Recipe 06: ALLOW all traffic from a namespace (default/app=web from namespaces labelled
# purpose=production). Sourced by tests/integration/netpol_recipes.sh.
#   n1: default/web, prod/test     n2: dev/test, default/test
{
	ns dev 'purpose: testing'
	ns prod 'purpose: production'
	pod default web n1 'app: web'
	pod default test n2 'run: test'
	pod dev test n2 'run: test'
	pod prod test n1 'run: test'
} | apply pods
ready default/web default/test dev/test prod/test

apply web-allow-prod <<'Y'
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-allow-prod
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          purpose: production
Y
changed
denied dev-http-denied dev/test http default/web
denied dev-udp-denied dev/test udp default/web
denied dev-tcp-denied dev/test tcp default/web
denied same-namespace-denied default/test http default/web
allowed prod-http-allowed prod/test http default/web
allowed prod-udp-allowed prod/test udp default/web
allowed prod-tcp-allowed prod/test tcp default/web
# Ingress-only: web reaches dev.
allowed egress-untouched default/web http dev/test
# Relabelling dev to production admits it (namespace labels are followed).
kc label namespace dev purpose=production --overwrite >/dev/null 2>&1
changed
allowed dev-relabelled-allowed dev/test http default/web
kc label namespace dev purpose=testing --overwrite >/dev/null 2>&1
changed
denied dev-unlabelled-denied-again dev/test http default/web
late_ingress late-pod-isolated default/web-late n2 'app: web' dev/test udp
clean default dev prod
