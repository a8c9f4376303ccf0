# SPDX-License-Identifier: Apache-2.0
# Recipe 02a: ALLOW all traffic to an application (app=web `ingress: [{}]`) on top of
# recipe 01's deny-all, which it voids; deleting it restores the deny.
# Sourced by tests/integration/netpol_recipes.sh.
#   n1: default/web (app=web,env=prod), other2a/test     n2: default/test
{
	ns other2a 'purpose: client'
	pod default web n1 'app: web, env: prod'
	pod default test n2 'run: test'
	pod other2a test n1 'run: test'
} | apply pods
ready default/web default/test other2a/test

apply web-deny-all <<'Y'
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-deny-all
spec:
  podSelector:
    matchLabels:
      app: web
      env: prod
Y
changed
denied deny-all-first default/test http default/web

apply web-allow-all <<'Y'
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: web-allow-all
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - {}
Y
changed
allowed same-namespace-http-allowed default/test http default/web
allowed same-namespace-udp-allowed default/test udp default/web
allowed other-namespace-http-allowed other2a/test http default/web
allowed other-namespace-tcp-allowed other2a/test tcp default/web
allowed egress-untouched default/web http other2a/test

kc delete networkpolicy web-allow-all >/dev/null 2>&1
changed
denied allow-removed-denied-again other2a/test http default/web
denied allow-removed-udp-denied-again default/test udp default/web
late_ingress late-pod-isolated default/web-late n2 'app: web, env: prod' other2a/test http
clean default other2a
