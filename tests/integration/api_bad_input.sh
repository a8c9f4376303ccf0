#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Bad input against sluice-control: every refusal must carry the right HTTP
# code and a Kubernetes Status body with the right reason, and must not lose
# or touch anything already stored.
#
#   curl / python3 ──HTTP──▶ sluice-control A (127.0.0.1:<free>, memory store)
#                        ──▶ sluice-control B (--retain-revisions 100: compacted watch)
#                        ──▶ sluice-control C (--token-file: bearer tokens)
#   sluice-control --listen 0.0.0.0:<port> without --token-file must refuse to start.
#
# The servers run the sanitizer build: at the end each one must still be alive,
# exit 0 on SIGTERM, and leave no AddressSanitizer/LeakSanitizer/UBSan report.
source "$(dirname "$0")/lib.sh"

SERVERS=()
SRVN=1 # numbers the servers in check names
start_control --store memory || { not_ok start; finish; }
SERVERS+=("$CONTROL_PID")
URL=$CONTROL_URL
JSON=(-H 'Content-Type: application/json')
# Detail lines under a "not ok" stay indented, so none reads as a result.
indent() { sed 's/^/  /'; }

# api METHOD PATH [curl args...]: one request to $URL; sets CODE and BODY.
api() {
	local m=$1 p=$2
	shift 2
	CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' --max-time 10 -X "$m" "$@" "$URL$p")
	BODY=$(cat "$TMP/body" 2>/dev/null)
}
# expect_status NAME CODE REASON: the last reply had this code and is a
# Failure Status carrying the same code and this reason.
expect_status() {
	local got
	got=$(jq -r 'if .kind == "Status" and .apiVersion == "v1" then
		"\(.status) \(.reason) \(.code)" else "not-a-Status" end' <<<"$BODY" 2>/dev/null) ||
		got="not-JSON: ${BODY:0:120}"
	expect_eq "$1" "$CODE $got" "$2 Failure $3 $2"
}
# expect_cause NAME FIELD: the last reply's details.causes names FIELD.
expect_cause() {
	local fields
	fields=$(jq -r '.details.causes[]?.field' <<<"$BODY" 2>/dev/null | tr '\n' ' ')
	if [[ " $fields " == *" $2 "* ]]; then ok "$1"; else not_ok "$1" "causes: $fields" "want: $2"; fi
}
# The store's revision, from a list's resourceVersion: refused requests must
# not move it.
rev() { curl -s --max-time 5 "$URL/api/v1/namespaces?limit=1" | jq -r .metadata.resourceVersion; }
# The sentinel object, normalised; must be byte-identical after every section.
sentinel() { curl -s --max-time 5 "$URL/api/v1/namespaces/default/configmaps/sentinel" | jq -cS .; }
section_intact() {
	expect_eq "$1/revision-unchanged" "$(rev)" "$REV0"
	expect_eq "$1/sentinel-unchanged" "$(sentinel)" "$SENTINEL"
}

api POST /api/v1/namespaces/default/configmaps "${JSON[@]}" \
	-d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"sentinel","labels":{"keep":"me"}},"data":{"k":"v"}}'
expect_eq sentinel-created "$CODE" 201
SENTINEL=$(sentinel)
SENTINEL_RV=$(jq -r .metadata.resourceVersion <<<"$SENTINEL")
REV0=$(rev)

# --- bodies that are not an object of the right type -------------------------
CM=/api/v1/namespaces/default/configmaps
api POST $CM "${JSON[@]}" -d '{"metadata":{"name":"x"},'
expect_status malformed-json 400 BadRequest
api POST $CM "${JSON[@]}" -d '{"metadata":{"name":"x"}} trailing'
expect_status trailing-garbage 400 BadRequest
for v in '[1,2]' '"str"' '42' 'null' 'true'; do
	api POST $CM "${JSON[@]}" -d "$v"
	expect_status "not-an-object-$v" 400 BadRequest
done
api POST $CM "${JSON[@]}"
expect_status empty-body 400 BadRequest
api POST $CM "${JSON[@]}" -d '{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"x"}}'
expect_status wrong-apiversion 400 BadRequest
expect_match wrong-apiversion-message "$BODY" 'API version in the data \(v2\)'
api POST $CM "${JSON[@]}" -d '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}'
expect_status wrong-kind 400 BadRequest
expect_match wrong-kind-message "$BODY" 'kind in the data \(Secret\)'
api POST $CM "${JSON[@]}" -d '{"apiVersion":7,"kind":"ConfigMap","metadata":{"name":"x"}}'
expect_status apiversion-not-string 400 BadRequest
api POST $CM "${JSON[@]}" -d '{"metadata":"x"}'
expect_status metadata-not-object 400 BadRequest
printf '{"metadata":{"name":"nul\0x"}}' >"$TMP/nul.json"
api POST $CM "${JSON[@]}" --data-binary @"$TMP/nul.json"
expect_status nul-byte 400 BadRequest
python3 -c 'n=100000; print("{\"metadata\":{\"name\":\"deep\"},\"data\":" + "["*n + "]"*n + "}")' >"$TMP/deep.json"
api POST $CM "${JSON[@]}" --data-binary @"$TMP/deep.json"
expect_status deeply-nested 400 BadRequest
api POST $CM -H 'Content-Type: application/vnd.kubernetes.protobuf' -d 'k8s'
expect_status protobuf-body 415 UnsupportedMediaType
api PUT $CM/sentinel "${JSON[@]}" -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other"},"data":{"k":"x"}}'
expect_status put-name-mismatch 400 BadRequest
api PUT $CM/sentinel "${JSON[@]}" -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"sentinel","namespace":"kube-system"},"data":{"k":"x"}}'
expect_status put-namespace-mismatch 400 BadRequest
api POST $CM "${JSON[@]}" -d '{"metadata":{"name":"rvset","resourceVersion":"5"}}'
expect_status create-with-resourceversion 400 BadRequest

# --- paths that name nothing ---------------------------------------------------
api GET /api/v1/namespaces/default/foos
expect_status unknown-resource 404 NotFound
api POST /api/v1/namespaces/default/foos "${JSON[@]}" -d '{"metadata":{"name":"x"}}'
expect_status unknown-resource-create 404 NotFound
api GET /apis/nosuch.example.com/v1/widgets
expect_status unknown-group 404 NotFound
api GET /apis/networking.k8s.io/v9/networkpolicies
expect_status unknown-version 404 NotFound
api GET /api/v2/pods
expect_status unknown-core-version 404 NotFound
api GET /nonsense
expect_status unknown-root 404 NotFound
api GET /api/v1/namespaces/default/configmaps/..%2f..%2fsecrets
expect_status encoded-slash-in-name 404 NotFound
api GET "/api/v1/namespaces/default/configmaps/$(printf 'a%.0s' {1..300})"
expect_status overlong-path-name 404 NotFound
api GET /api/v1/namespaces/default/pods/x/exec
expect_status unknown-subresource 404 NotFound
api GET /api/v1/nodes/n1/status/extra/segments/and/more
expect_status too-many-segments 404 NotFound
api GET /api/v1/namespaces/default/nodes
expect_status cluster-scoped-in-namespace 404 NotFound
api POST $CM/sentinel "${JSON[@]}" -d '{}'
expect_status post-to-named-object 405 MethodNotAllowed
section_intact shape

# --- bodies over the 3 MiB limit ----------------------------------------------------
python3 -c 'import json; print(json.dumps({"metadata":{"name":"big"},"data":{"a":"x"*(3*1024*1024+1000)}}))' >"$TMP/big.json"
api POST $CM "${JSON[@]}" --data-binary @"$TMP/big.json"
expect_status body-over-3MiB-create 413 RequestEntityTooLarge
api PUT $CM/sentinel "${JSON[@]}" --data-binary @"$TMP/big.json"
expect_status body-over-3MiB-update 413 RequestEntityTooLarge
api PATCH $CM/sentinel -H 'Content-Type: application/merge-patch+json' --data-binary @"$TMP/big.json"
expect_status body-over-3MiB-patch 413 RequestEntityTooLarge
# Far above the limit evhttp itself refuses before reading it all (its reply
# is plain HTML: libevent 2.1 has no hook for that page), the server lives on.
head -c $((14 * 1024 * 1024)) /dev/zero | tr '\0' 'x' >"$TMP/huge.bin"
api POST $CM "${JSON[@]}" --data-binary @"$TMP/huge.bin"
expect_eq body-over-12MiB-refused "$CODE" 413
# Just under the limit is read and handled (whitespace padding: a ConfigMap's
# own data may not exceed 1 MiB).
python3 -c 'import json; print(json.dumps({"metadata":{"name":"almost"},"data":{"a":"x"*1000000}}) + " "*(3*1024*1024-1000200))' >"$TMP/almost.json"
api POST /api/v1/namespaces/kube-public/configmaps "${JSON[@]}" --data-binary @"$TMP/almost.json"
expect_eq body-just-under-3MiB-accepted "$CODE" 201
python3 -c 'import json; print(json.dumps({"metadata":{"name":"toolong"},"data":{"a":"x"*(1024*1024+10)}}))' >"$TMP/cm2.json"
api POST $CM "${JSON[@]}" --data-binary @"$TMP/cm2.json"
expect_status configmap-over-1MiB 422 Invalid
expect_eq configmap-over-1MiB-cause "$(jq -r '.details.causes[0].reason' <<<"$BODY")" FieldValueTooLong
api DELETE /api/v1/namespaces/kube-public/configmaps/almost
REV0=$(rev)
section_intact size

# --- validation: 422 Invalid naming the field ---------------------------------------
api POST $CM "${JSON[@]}" -d '{"metadata":{"name":"Bad_Name"}}'
expect_status invalid-name 422 Invalid
expect_cause invalid-name-field metadata.name
api POST $CM "${JSON[@]}" -d "{\"metadata\":{\"name\":\"$(printf 'a%.0s' {1..300})\"}}"
expect_status overlong-name 422 Invalid
expect_cause overlong-name-field metadata.name
api POST $CM "${JSON[@]}" -d '{"metadata":{"name":"x"},"data":{"a":1}}'
expect_status configmap-data-not-string 422 Invalid
expect_cause configmap-data-field 'data[a]'
api POST $CM "${JSON[@]}" -d '{"metadata":{"name":"x","labels":{"bad key":"v"}}}'
expect_status invalid-label-key 422 Invalid
expect_cause invalid-label-key-field metadata.labels
api POST $CM "${JSON[@]}" -d '{"metadata":{}}'
expect_status missing-name 422 Invalid
expect_cause missing-name-field metadata.name
api POST /api/v1/namespaces/default/services "${JSON[@]}" \
	-d '{"metadata":{"name":"svc"},"spec":{"ports":[{"port":70000}]}}'
expect_status service-port-range 422 Invalid
expect_cause service-port-field 'spec.ports[0].port'
api POST /api/v1/namespaces/default/services "${JSON[@]}" \
	-d '{"metadata":{"name":"svc"},"spec":{"type":"Sideways","ports":[{"port":80}]}}'
expect_status service-type 422 Invalid
expect_cause service-type-field spec.type
api POST /api/v1/namespaces/default/services "${JSON[@]}" \
	-d '{"metadata":{"name":"svc"},"spec":{"clusterIP":"10.0.0.1","ports":[{"port":80}]}}'
expect_status service-clusterip-outside-cidr 422 Invalid
expect_cause service-clusterip-field spec.clusterIPs
api POST /api/v1/namespaces/default/pods "${JSON[@]}" -d '{"metadata":{"name":"p"},"spec":{}}'
expect_status pod-without-containers 422 Invalid
expect_cause pod-containers-field spec.containers
api POST /apis/discovery.k8s.io/v1/namespaces/default/endpointslices "${JSON[@]}" \
	-d '{"metadata":{"name":"e"},"addressType":"IPv4","endpoints":[{"addresses":["not-an-ip"]}]}'
expect_status endpointslice-bad-address 422 Invalid
expect_cause endpointslice-address-field 'endpoints[0].addresses[0]'
section_intact invalid

# --- existence and concurrency ----------------------------------------------------------
api POST $CM "${JSON[@]}" -d '{"metadata":{"name":"sentinel"},"data":{"k":"overwrite?"}}'
expect_status duplicate-create 409 AlreadyExists
expect_match duplicate-create-message "$BODY" 'configmaps \\"sentinel\\" already exists'
api PUT $CM/missing "${JSON[@]}" -d '{"metadata":{"name":"missing"},"data":{}}'
expect_status update-missing 404 NotFound
api PATCH $CM/missing -H 'Content-Type: application/merge-patch+json' -d '{"data":{"a":"b"}}'
expect_status patch-missing 404 NotFound
api DELETE $CM/missing
expect_status delete-missing 404 NotFound
api PUT $CM/sentinel "${JSON[@]}" \
	-d "{\"metadata\":{\"name\":\"sentinel\",\"resourceVersion\":\"$((SENTINEL_RV - 1))\"},\"data\":{\"k\":\"stale\"}}"
expect_status put-stale-resourceversion 409 Conflict
expect_match put-stale-message "$BODY" 'the object has been modified'
api PATCH $CM/sentinel -H 'Content-Type: application/merge-patch+json' \
	-d "{\"metadata\":{\"resourceVersion\":\"$((SENTINEL_RV - 1))\"},\"data\":{\"k\":\"stale\"}}"
expect_status patch-stale-resourceversion 409 Conflict
api DELETE $CM/sentinel "${JSON[@]}" -d '{"preconditions":{"resourceVersion":"1"}}'
expect_status delete-precondition-rv 409 Conflict
api DELETE $CM/sentinel "${JSON[@]}" -d '{"preconditions":{"uid":"00000000-0000-4000-8000-000000000000"}}'
expect_status delete-precondition-uid 409 Conflict
api DELETE $CM/sentinel "${JSON[@]}" -d '{"propagationPolicy":"Sometimes"}'
expect_status delete-bad-propagation 400 BadRequest
api DELETE $CM/sentinel "${JSON[@]}" -d '[not json'
expect_status delete-bad-options 400 BadRequest

# --- patch content types and failing patches ---------------------------------------------
api PATCH $CM/sentinel -H 'Content-Type: text/plain' -d '{"data":{"k":"x"}}'
expect_status patch-text-plain 415 UnsupportedMediaType
api PATCH $CM/sentinel -d '{"data":{"k":"x"}}'
expect_status patch-form-urlencoded 415 UnsupportedMediaType
api PATCH $CM/sentinel -H 'Content-Type: application/apply-patch+yaml' -d 'data: {k: x}'
expect_status server-side-apply 415 UnsupportedMediaType
expect_match server-side-apply-message "$BODY" 'server-side apply is not supported'
api PATCH $CM/sentinel -H 'Content-Type: application/json-patch+json' \
	-d '[{"op":"test","path":"/data/k","value":"not-v"},{"op":"replace","path":"/data/k","value":"x"}]'
expect_status json-patch-test-fails 422 Invalid
api PATCH $CM/sentinel -H 'Content-Type: application/json-patch+json' \
	-d '[{"op":"remove","path":"/data/nosuch"}]'
expect_status json-patch-bad-path 400 BadRequest
api PATCH $CM/sentinel -H 'Content-Type: application/json-patch+json' -d '{"op":"add"}'
expect_status json-patch-not-array 400 BadRequest
api PATCH $CM/sentinel -H 'Content-Type: application/merge-patch+json' -d '{"data":'
expect_status merge-patch-malformed 400 BadRequest
api PATCH $CM/sentinel -H 'Content-Type: application/merge-patch+json' -d '{"kind":"Secret"}'
expect_status merge-patch-changes-kind 400 BadRequest
api PATCH $CM/sentinel -H 'Content-Type: application/merge-patch+json' -d '{"metadata":{"name":"renamed"}}'
expect_status merge-patch-changes-name 400 BadRequest
api PATCH $CM/sentinel -H 'Content-Type: application/merge-patch+json' -d '{"data":{"k":5}}'
expect_status merge-patch-invalid-result 422 Invalid
expect_cause merge-patch-invalid-field 'data[k]'
api PATCH $CM/sentinel -H 'Content-Type: application/merge-patch+json'
expect_status patch-empty-body 400 BadRequest
section_intact concurrency

# --- watch and list parameters ---------------------------------------------------------
api GET "$CM?watch=true&resourceVersion=abc"
expect_status watch-garbage-rv 400 BadRequest
api GET "$CM?watch=true&resourceVersion=-5"
expect_status watch-negative-rv 400 BadRequest
api GET "$CM?watch=true&resourceVersion=99999999999999999999999"
expect_status watch-overflowing-rv 400 BadRequest
api GET "$CM?watch=true&resourceVersion=$((REV0 + 1000))"
expect_status watch-future-rv 504 Timeout
expect_eq watch-future-rv-cause "$(jq -r '.details.causes[0].reason' <<<"$BODY")" ResourceVersionTooLarge
api GET "$CM?watch=true&timeoutSeconds=soon"
expect_status watch-bad-timeout 400 BadRequest
api POST "$CM?watch=true" "${JSON[@]}" -d '{}'
expect_status watch-with-post 405 MethodNotAllowed
api GET "$CM?resourceVersion=$((REV0 + 1000))"
expect_status list-future-rv 504 Timeout
api GET "$CM?resourceVersion=zz"
expect_status list-garbage-rv 400 BadRequest
api GET "$CM?resourceVersion=1&resourceVersionMatch=Exact"
expect_status list-exact-old-rv 410 Expired
api GET "$CM?resourceVersionMatch=Sometimes"
expect_status list-bad-rv-match 400 BadRequest
api GET "$CM?labelSelector=a%20in%20("
expect_status list-bad-label-selector 400 BadRequest
api GET "$CM?labelSelector=%21%21%21"
expect_status list-bad-label-selector-bangs 400 BadRequest
api GET "$CM?fieldSelector=spec.foo%3Dbar"
expect_status list-unsupported-field-selector 400 BadRequest
expect_match list-unsupported-field-selector-names-field "$BODY" 'spec\.foo'
api GET "$CM?fieldSelector=%3D%3D%3D"
expect_status list-malformed-field-selector 400 BadRequest
api GET "$CM?watch=true&labelSelector=a%20in%20("
expect_status watch-bad-label-selector 400 BadRequest
api GET "$CM?limit=-1"
expect_status list-negative-limit 400 BadRequest
api GET "$CM?limit=ten"
expect_status list-garbage-limit 400 BadRequest
api GET "$CM?labelSelector=$(printf 'a%.0s' {1..5000})"
expect_status list-overlong-label-selector 400 BadRequest
api GET "$CM?fieldSelector=metadata.name%3Dsentinel"
expect_eq list-supported-field-selector "$CODE $(jq -r '[.items[].metadata.name]|join(",")' <<<"$BODY")" "200 sentinel"
section_intact params

# --- paging: 25 objects, limit=10 ----------------------------------------------------------
cat >"$TMP/burst.py" <<'PY'
# burst.py URL NAMESPACE PREFIX COUNT: creates COUNT ConfigMaps over one
# keep-alive connection; prints the number created (201).
import http.client, json, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
ns, prefix, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
made = 0
for i in range(count):
    body = json.dumps({"metadata": {"name": "%s-%03d" % (prefix, i)}, "data": {"i": str(i)}})
    c.request("POST", "/api/v1/namespaces/%s/configmaps" % ns, body,
              {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    made += r.status == 201
print(made)
PY
api POST /api/v1/namespaces "${JSON[@]}" -d '{"metadata":{"name":"paging"}}'
expect_eq paging-namespace "$CODE" 201
expect_eq paging-created-25 "$(python3 "$TMP/burst.py" "$URL" paging obj 25)" 25
tok="" pages=0
: >"$TMP/names"
for _ in $(seq 10); do
	api GET "/api/v1/namespaces/paging/configmaps?limit=10${tok:+&continue=$tok}"
	[[ $CODE == 200 ]] || break
	pages=$((pages + 1))
	jq -r '.items[].metadata.name' <<<"$BODY" >>"$TMP/names"
	jq -r '.items | length' <<<"$BODY" >>"$TMP/sizes"
	tok=$(jq -r '.metadata.continue // empty' <<<"$BODY")
	[[ $pages == 1 ]] && FIRST_TOKEN=$tok
	[[ -n $tok ]] || break
done
expect_eq paging-3-pages "$pages" 3
expect_eq paging-page-sizes "$(tr '\n' ' ' <"$TMP/sizes")" "10 10 5 "
expect_eq paging-no-duplicates "$(sort "$TMP/names" | uniq -d | wc -l)" 0
expect_eq paging-no-misses "$(sort -u "$TMP/names" | tr '\n' ' ')" \
	"$(for i in $(seq 0 24); do printf 'obj-%03d ' "$i"; done)"
api GET "/api/v1/namespaces/paging/configmaps?limit=10&continue=${FIRST_TOKEN:0:6}"
expect_status continue-truncated 400 BadRequest
api GET "/api/v1/namespaces/paging/configmaps?limit=10&continue=${FIRST_TOKEN}%21%21"
expect_status continue-bad-characters 400 BadRequest
api GET "/api/v1/namespaces/paging/services?limit=10&continue=$FIRST_TOKEN"
expect_status continue-other-resource 400 BadRequest
b64() { printf '%b' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }
api GET "/api/v1/namespaces/paging/configmaps?limit=10&continue=$(b64 '5\n/core/secrets/paging/x')"
expect_status continue-forged-key 400 BadRequest
api GET "/api/v1/namespaces/paging/configmaps?limit=10&continue=$(b64 '-3\n/core/configmaps/paging/obj-001')"
expect_status continue-negative-rv 400 BadRequest
api GET "/api/v1/namespaces/paging/configmaps?limit=10&continue=$(b64 "1\n/core/configmaps/$(printf 'z%.0s' {1..700})")"
expect_status continue-overlong 400 BadRequest
REV0=$(rev)

# --- namespaces -------------------------------------------------------------------------
api POST /api/v1/namespaces/nosuchns/configmaps "${JSON[@]}" -d '{"metadata":{"name":"x"}}'
expect_status create-in-missing-namespace 404 NotFound
api GET /api/v1/namespaces/nosuchns
expect_status get-missing-namespace 404 NotFound
api POST $CM "${JSON[@]}" -d '{"metadata":{"name":"x","namespace":"kube-system"}}'
expect_status body-namespace-mismatch 400 BadRequest
for ns in default kube-system kube-public; do
	api DELETE /api/v1/namespaces/$ns
	expect_status "delete-$ns-namespace" 403 Forbidden
done
api GET /api/v1/namespaces/default
expect_eq default-namespace-still-active "$CODE $(jq -r .status.phase <<<"$BODY")" "200 Active"
api DELETE /api/v1/namespaces
expect_status delete-all-namespaces 405 MethodNotAllowed
section_intact namespaces

# --- pods/binding -----------------------------------------------------------------------------
PODS=/api/v1/namespaces/default/pods
api POST $PODS "${JSON[@]}" \
	-d '{"metadata":{"name":"bindme","labels":{"app":"a"}},"spec":{"containers":[{"name":"c","image":"i"}]}}'
expect_eq binding-pod-created "$CODE" 201
BIND='{"apiVersion":"v1","kind":"Binding","metadata":{"name":"bindme"},"target":{"kind":"Node","name":"node-a"}}'
api POST $PODS/bindme/binding "${JSON[@]}" -d "$BIND"
expect_eq binding-first "$CODE $(jq -r .status <<<"$BODY")" "201 Success"
api POST $PODS/bindme/binding "${JSON[@]}" -d "${BIND/node-a/node-b}"
expect_status binding-second 409 Conflict
api GET $PODS/bindme
expect_eq binding-node-kept "$(jq -r .spec.nodeName <<<"$BODY")" node-a
api POST $PODS/nosuch/binding "${JSON[@]}" -d "$BIND"
expect_status binding-missing-pod 404 NotFound
api POST $PODS/bindme/binding "${JSON[@]}" -d '{"apiVersion":"v1","kind":"Binding","target":{}}'
expect_status binding-no-target 422 Invalid
api POST $PODS/bindme/binding "${JSON[@]}" -d '[]'
expect_status binding-not-object 400 BadRequest
api PUT $PODS/bindme/binding "${JSON[@]}" -d "$BIND"
expect_status binding-put 405 MethodNotAllowed

# --- status subresource -----------------------------------------------------------------------
api GET $PODS/bindme
pod=$BODY
rv=$(jq -r .metadata.resourceVersion <<<"$pod")
new=$(jq -c '.status.phase = "Running" | .metadata.labels.app = "changed-via-status" |
	.spec.activeDeadlineSeconds = 5' <<<"$pod")
api PUT $PODS/bindme/status "${JSON[@]}" -d "$new"
expect_eq status-put-ok "$CODE" 200
api GET $PODS/bindme
expect_eq status-put-changes-status "$(jq -r .status.phase <<<"$BODY")" Running
expect_eq status-put-keeps-labels "$(jq -r .metadata.labels.app <<<"$BODY")" a
expect_eq status-put-keeps-spec "$(jq -r '.spec.activeDeadlineSeconds // "unset"' <<<"$BODY")" unset
expect_match status-put-bumps-rv "$(jq -r .metadata.resourceVersion <<<"$BODY")" "^([0-9]+)$"
[[ $(jq -r .metadata.resourceVersion <<<"$BODY") -gt $rv ]] && ok status-put-rv-advanced ||
	not_ok status-put-rv-advanced "rv stayed $rv"
new=$(jq -c '.status.phase = "Failed" | .metadata.labels.app = "changed-via-main"' <<<"$BODY")
api PUT $PODS/bindme "${JSON[@]}" -d "$new"
expect_eq main-put-ok "$CODE" 200
api GET $PODS/bindme
expect_eq main-put-keeps-status "$(jq -r .status.phase <<<"$BODY")" Running
expect_eq main-put-changes-labels "$(jq -r .metadata.labels.app <<<"$BODY")" changed-via-main
api PATCH $PODS/bindme -H 'Content-Type: application/merge-patch+json' -d '{"status":{"phase":"Succeeded"}}'
api GET $PODS/bindme
expect_eq main-patch-keeps-status "$(jq -r .status.phase <<<"$BODY")" Running
api PUT $CM/sentinel/status "${JSON[@]}" -d "$SENTINEL"
expect_status status-on-kind-without-status 404 NotFound

# --- generateName -------------------------------------------------------------------------------
names=()
for _ in 1 2 3; do
	api POST $CM "${JSON[@]}" -d '{"metadata":{"generateName":"gen-"},"data":{"a":"b"}}'
	[[ $CODE == 201 ]] && names+=("$(jq -r .metadata.name <<<"$BODY")")
done
expect_eq generatename-three-created "${#names[@]}" 3
expect_eq generatename-distinct "$(printf '%s\n' "${names[@]}" | sort -u | wc -l)" 3
expect_match generatename-shape "${names[*]}" '^gen-[a-z0-9]{5} gen-[a-z0-9]{5} gen-[a-z0-9]{5}$'
api POST $CM "${JSON[@]}" -d '{"metadata":{"generateName":"Bad_"},"data":{}}'
expect_status generatename-invalid 422 Invalid
api POST $CM "${JSON[@]}" -d "{\"metadata\":{\"generateName\":\"$(printf 'g%.0s' {1..80})\"}}"
expect_eq generatename-long-prefix-trimmed "$CODE $(jq -r '.metadata.name | length' <<<"$BODY")" "201 63"
expect_eq sentinel-survived-everything "$(sentinel)" "$SENTINEL"

# --- compacted history: --retain-revisions 100, 210 writes, watch from RV 1 ----------------------
start_control --store memory --retain-revisions 100 || { not_ok start-retain; finish; }
SERVERS+=("$CONTROL_PID")
URL=$CONTROL_URL
expect_eq compaction-210-writes "$(python3 "$TMP/burst.py" "$URL" default w 210)" 210
curl -s -N --max-time 10 -o "$TMP/expired.out" -w '%{http_code}' \
	"$URL/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1" >"$TMP/expired.code"
rc=$?
expect_eq watch-compacted-http-200 "$(cat "$TMP/expired.code")" 200
expect_eq watch-compacted-stream-ends "$rc" 0
expect_eq watch-compacted-one-event "$(wc -l <"$TMP/expired.out")" 1
expect_eq watch-compacted-error-410-expired \
	"$(jq -r '"\(.type) \(.object.kind) \(.object.code) \(.object.reason)"' "$TMP/expired.out" 2>&1)" \
	"ERROR Status 410 Expired"
now=$(rev)
curl -s -N --max-time 10 "$URL/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=$((now - 20))&timeoutSeconds=1" \
	>"$TMP/recent.out"
expect_eq watch-recent-rv-replays-20 "$(jq -r .type "$TMP/recent.out" | sort | uniq -c | awk '{print $1, $2}')" "20 ADDED"
api GET "/api/v1/namespaces/default/configmaps?resourceVersion=1&resourceVersionMatch=Exact"
expect_status list-compacted-exact 410 Expired

# --- bearer tokens ------------------------------------------------------------------------------
TOKEN=sluice-test-token-8f2c41
printf '# test tokens\n%s,alice,1001\nsecond-token-77aa,bob,1002,admins\n' "$TOKEN" >"$TMP/tokens.csv"
start_control --store memory --token-file "$TMP/tokens.csv" || { not_ok start-tokens; finish; }
SERVERS+=("$CONTROL_PID")
URL=$CONTROL_URL
api GET /api/v1/namespaces
expect_status token-missing 401 Unauthorized
api GET /api/v1/namespaces -H "Authorization: Bearer wrong-token-123456"
expect_status token-wrong 401 Unauthorized
api GET /api/v1/namespaces -H "Authorization: Bearer ${TOKEN:0:10}"
expect_status token-prefix 401 Unauthorized
api GET /api/v1/namespaces -H "Authorization: Bearer ${TOKEN}x"
expect_status token-extended 401 Unauthorized
api GET /api/v1/namespaces -H "Authorization: Basic $(printf 'alice:%s' "$TOKEN" | base64)"
expect_status token-basic-auth 401 Unauthorized
api GET /api/v1/namespaces -H "Authorization: Bearer "
expect_status token-empty 401 Unauthorized
api POST $CM "${JSON[@]}" -d '{"metadata":{"name":"anon"}}'
expect_status token-missing-write 401 Unauthorized
api GET /metrics
expect_eq token-missing-metrics "$CODE" 401
api GET /api/v1/namespaces -H "Authorization: Bearer $TOKEN"
expect_eq token-right "$CODE $(jq -r .kind <<<"$BODY")" "200 NamespaceList"
api GET /api/v1/namespaces -H "Authorization: bearer second-token-77aa"
expect_eq token-second-user "$CODE" 200
api POST $CM "${JSON[@]}" -H "Authorization: Bearer $TOKEN" -d '{"metadata":{"name":"authed"}}'
expect_eq token-right-write "$CODE" 201
for h in healthz livez readyz; do
	api GET /$h
	expect_eq "token-not-needed-$h" "$CODE $BODY" "200 ok"
done
api GET "/api/v1/namespaces/default/configmaps?watch=true"
expect_status token-missing-watch 401 Unauthorized
printf 'short,bob,1\n' >"$TMP/badtokens.csv"
out=$(timeout 10 "$BIN/sluice-control" --listen 127.0.0.1:"$(free_port)" --store memory \
	--token-file "$TMP/badtokens.csv" 2>&1)
rc=$?
[[ $rc != 0 && $rc != 124 ]] && ok token-file-short-token-refused || not_ok token-file-short-token-refused "rc=$rc"
expect_match token-file-short-token-message "$out" "token file '.*badtokens.csv': line 1"
out=$(timeout 10 "$BIN/sluice-control" --listen 127.0.0.1:"$(free_port)" --store memory \
	--token-file "$TMP/nosuch.csv" 2>&1)
rc=$?
[[ $rc != 0 && $rc != 124 ]] && ok token-file-missing-refused || not_ok token-file-missing-refused "rc=$rc"

# --- beyond loopback needs tokens ----------------------------------------------------------------
# The server must refuse before it binds; a wrong build that did bind is
# stopped by timeout within 3 s.
out=$(timeout 3 "$BIN/sluice-control" --listen "0.0.0.0:$(free_port)" --store memory 2>&1)
rc=$?
[[ $rc != 0 && $rc != 124 ]] && ok listen-any-without-tokens-refused ||
	not_ok listen-any-without-tokens-refused "rc=$rc (124 = it kept running)"
expect_match listen-any-without-tokens-names-flag "$out" '--token-file'
out=$(timeout 3 "$BIN/sluice-control" --listen "nonsense" --store memory 2>&1)
rc=$?
[[ $rc != 0 && $rc != 124 ]] && ok listen-malformed-refused || not_ok listen-malformed-refused "rc=$rc"
expect_match listen-malformed-names-flag "$out" "--listen 'nonsense'"

# --- the servers survived all of it, cleanly -------------------------------------------------------
for i in "${!SERVERS[@]}"; do
	pid=${SERVERS[$i]}
	if kill -0 "$pid" 2>/dev/null; then ok "server-$SRVN-alive"; else not_ok "server-$SRVN-alive"; fi
	kill -TERM "$pid" 2>/dev/null
	rc=0
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	wait "$pid" 2>/dev/null || rc=$?
	expect_eq "server-$SRVN-exit-0" "$rc" 0
	SRVN=$((SRVN + 1))
done
reports=$(grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error|SUMMARY: ' "$TMP/control.log")
if [[ -z $reports ]]; then ok no-sanitizer-reports; else not_ok no-sanitizer-reports "$(head -40 "$TMP/control.log" | indent)"; fi

finish
