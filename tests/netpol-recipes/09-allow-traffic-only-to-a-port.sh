# SPDX-License-Identifier: Apache-2.0
# Recipe 09: ALLOW traffic only to a port of an application (app=apiserver: only port 5000,
# only from role=monitoring), by number and by the named-port variant (api-port).
# The apiserver pod serves HTTP on 8000 and the TCP/UDP echo on 5000 (named api-port).
# Sourced by tests/integration/netpol_recipes.sh.
#   n1: default/apiserver, default/mon-same (role=monitoring)
#   n2: default/test, default/mon (role=monitoring)
{
	pod default apiserver n1 'app: apiserver' 8000 5000 | sed 's/{name: echo, /{name: api-port, /'
	pod default test n2 'run: test'
	pod default mon n2 'role: monitoring'
	pod default mon-same n1 'role: monitoring'
} | apply pods
ready default/apiserver default/test default/mon default/mon-same

allowed open-8000 default/test http default/apiserver 8000

apply api-allow-5000 <<'Y'
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: api-allow-5000
spec:
  podSelector:
    matchLabels:
      app: apiserver
  ingress:
  - ports:
    - port: 5000
    from:
    - podSelector:
        matchLabels:
          role: monitoring
Y
changed
ports_probes() { # $1: check-name prefix
	denied "$1-unlabelled-8000-denied" default/test http default/apiserver 8000
	denied "$1-unlabelled-5000-denied" default/test tcp default/apiserver 5000
	allowed "$1-monitoring-5000-allowed" default/mon tcp default/apiserver 5000
	allowed "$1-monitoring-5000-same-node-allowed" default/mon-same tcp default/apiserver 5000
	denied "$1-monitoring-8000-denied" default/mon http default/apiserver 8000
	denied "$1-monitoring-8000-same-node-denied" default/mon-same http default/apiserver 8000
	# The port's protocol defaults to TCP: UDP 5000 stays closed.
	denied "$1-monitoring-udp-5000-denied" default/mon udp default/apiserver 5000
}
ports_probes number
allowed egress-untouched default/apiserver http default/test
late_ingress late-pod-isolated default/apiserver-late n2 'app: apiserver' default/mon tcp

# The named-port variant: port api-port resolves to the apiserver's containerPort 5000.
kc delete networkpolicy api-allow-5000 >/dev/null 2>&1
apply api-allow-api-port <<'Y'
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: api-allow-5000
spec:
  podSelector:
    matchLabels:
      app: apiserver
  ingress:
  - ports:
    - port: api-port
    from:
    - podSelector:
        matchLabels:
          role: monitoring
Y
changed
ports_probes named
clean default
