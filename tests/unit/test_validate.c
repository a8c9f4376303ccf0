// SPDX-License-Identifier: Apache-2.0
/*
 * control/validate.c and control/defaults.c: table-driven cases per kind.
 * Each case is an object (JSON written with single quotes for readability;
 * they become double quotes before parsing), optionally the stored object
 * for an update, and either "valid" or the field path + reason (+ a message
 * fragment) of a cause that must be reported. Every case runs through
 * default_object() first, as the API server does.
 */
#include <errno.h>
#include <stdlib.h>

#include "control/validate.h"
#include "harness.h"
#include "sluice/json.h"
#include "sluice/selector.h"

struct vcase {
	const char *kind;
	bool namespaced;
	const char *obj;
	const char *old;    /* stored object on update, NULL on create */
	const char *field;  /* NULL: the object must be valid */
	const char *reason; /* CAUSE_* */
	const char *msg;    /* fragment of the message, NULL: any */
};

/* Parses JSON written with ' for ". */
static struct json_object *jq(const char *s)
{
	char err[128], *t = strdup(s);
	struct json_object *o;

	if (!t)
		return NULL;
	for (char *p = t; *p; p++)
		if (*p == '\'')
			*p = '"';
	o = sl_json_parse(t, strlen(t), err, sizeof(err));
	if (!o)
		fprintf(stderr, "  bad test JSON (%s): %s\n", err, t);
	free(t);
	return o;
}

static void dump_causes(const struct api_causes *c)
{
	for (size_t i = 0; i < c->n; i++)
		fprintf(stderr, "    cause: %s %s: %s\n", c->v[i].reason, c->v[i].field,
			c->v[i].message);
}

static const struct api_cause *find_cause(const struct api_causes *c, const char *field,
					  const char *reason, const char *msg)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->v[i].field, field) && !strcmp(c->v[i].reason, reason) &&
		    (!msg || strstr(c->v[i].message, msg)))
			return &c->v[i];
	return NULL;
}

static void run_cases(const char *table, const struct vcase *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct vcase *tc = &cases[i];
		struct json_object *obj = jq(tc->obj), *old = tc->old ? jq(tc->old) : NULL;
		struct api_causes causes = {0};
		char name[96];
		int got;

		snprintf(name, sizeof(name), "%s[%zu] %s", table, i,
			 tc->field ? tc->field : "valid");
		if (!ASSERT_NOT_NULL(obj, name) || (tc->old && !ASSERT_NOT_NULL(old, name)))
			goto next;
		/* A stored object was defaulted when it was created. */
		if (old && !ASSERT_OK(default_object(tc->kind, old, NULL), name))
			goto next;
		if (!ASSERT_OK(default_object(tc->kind, obj, old), name))
			goto next;
		got = validate_object(tc->kind, tc->namespaced, obj, old, &causes);
		ASSERT_EQ(got, (int)causes.n, "return value counts causes");
		if (!tc->field) {
			if (!ASSERT_EQ(causes.n, 0, name))
				dump_causes(&causes);
		} else if (!ASSERT_NOT_NULL(find_cause(&causes, tc->field, tc->reason, tc->msg),
					    name)) {
			fprintf(stderr, "    want: %s %s: %s\n", tc->reason, tc->field,
				tc->msg ? tc->msg : "*");
			dump_causes(&causes);
		}
	next:
		api_causes_fini(&causes);
		json_object_put(obj);
		json_object_put(old);
	}
}

#define RUN(table) run_cases(#table, table, sizeof(table) / sizeof((table)[0]))

#define INV	CAUSE_INVALID
#define REQ	CAUSE_REQUIRED
#define NSUP	CAUSE_NOT_SUPPORTED
#define DUP	CAUSE_DUPLICATE
#define FORB	CAUSE_FORBIDDEN
#define TOOLONG CAUSE_TOO_LONG
#define TOOMANY "FieldValueTooMany"

#define PORT_RANGE "must be between 1 and 65535, inclusive"
#define IP_MSG	   "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
#define CIDR_MSG   "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"

/* --- Service ----------------------------------------------------------------- */

#define SVC_META  "'metadata':{'name':'web','namespace':'default'}"
#define SVC(spec) "{" SVC_META ",'spec':" spec "}"
#define S(spec, field, reason, msg)                                  \
	{                                                            \
		"Service", true, SVC(spec), NULL, field, reason, msg \
	}
#define S_OK(spec) S(spec, NULL, NULL, NULL)

static const struct vcase service_cases[] = {
	S_OK("{'ports':[{'port':80}],'selector':{'app':'web'}}"),
	S_OK("{'ports':[{'name':'http','port':80},{'name':'https','port':443,'targetPort':'https'}]"
	     "}"),
	S_OK("{'clusterIP':'None','selector':{'app':'db'}}"),
	S_OK("{'clusterIP':'None','ports':[{'port':5432}]}"),
	S_OK("{'type':'ExternalName','externalName':'db.example.com.'}"),
	S_OK("{'type':'ExternalName','externalName':'db.example.com'}"),
	S_OK("{'type':'NodePort','ports':[{'port':80,'nodePort':30080}]}"),
	S_OK("{'type':'NodePort','ports':[{'port':80}]}"),
	S_OK("{'type':'LoadBalancer','externalTrafficPolicy':'Local','healthCheckNodePort':30999,"
	     "'ports':[{'port':443,'nodePort':30443}]}"),
	S_OK("{'sessionAffinity':'ClientIP','sessionAffinityConfig':{'clientIP':{'timeoutSeconds':"
	     "60}},"
	     "'ports':[{'port':80}]}"),
	S_OK("{'sessionAffinity':'ClientIP','ports':[{'port':80}]}"),
	S_OK("{'clusterIP':'198.18.0.10','ports':[{'port':53,'protocol':'UDP','name':'dns'},"
	     "{'port':53,'protocol':'TCP','name':'dns-tcp'}]}"),
	S_OK("{'clusterIP':'198.18.0.10','clusterIPs':['198.18.0.10'],'ports':[{'port':80}]}"),
	S_OK("{'externalIPs':['198.18.5.5'],'ports':[{'port':80}]}"),
	S_OK("{'ports':[{'port':9000,'protocol':'SCTP','targetPort':9001}]}"),
	S_OK("{'ports':[{'port':80,'appProtocol':'kubernetes.io/h2c'}]}"),
	S_OK("{'ports':[{'port':65535,'targetPort':1}],'internalTrafficPolicy':'Local'}"),
	S_OK("{'type':'LoadBalancer','loadBalancerSourceRanges':['198.18.0.0/16'],"
	     "'ports':[{'port':80}]}"),
	S("{}", "spec.ports", REQ, "Required value"),
	S("{'ports':[]}", "spec.ports", REQ, NULL),
	{"Service", true, "{" SVC_META "}", NULL, "spec.ports", REQ, NULL},
	S("{'ports':[{'port':0}]}", "spec.ports[0].port", INV,
	  "Invalid value: 0: must be between 1 and 65535, inclusive"),
	S("{'ports':[{'port':70000}]}", "spec.ports[0].port", INV,
	  "Invalid value: 70000: " PORT_RANGE),
	S("{'ports':[{'port':-1}]}", "spec.ports[0].port", INV, PORT_RANGE),
	S("{'ports':[{'targetPort':80}]}", "spec.ports[0].port", INV, PORT_RANGE),
	S("{'ports':[{'port':'80'}]}", "spec.ports[0].port", INV,
	  "Invalid value: \"80\": must be an integer"),
	S("{'ports':[{'port':80.5}]}", "spec.ports[0].port", INV, "must be an integer"),
	S("{'ports':[{'port':80,'protocol':'ICMP'}]}", "spec.ports[0].protocol", NSUP,
	  "Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\""),
	S("{'ports':[{'port':80,'protocol':'tcp'}]}", "spec.ports[0].protocol", NSUP, NULL),
	S("{'ports':[{'port':80},{'port':81}]}", "spec.ports[0].name", REQ, NULL),
	S("{'ports':[{'port':80,'name':'a'},{'port':81}]}", "spec.ports[1].name", REQ, NULL),
	S("{'ports':[{'port':80,'name':'a'},{'port':81,'name':'a'}]}", "spec.ports[1].name", DUP,
	  "Duplicate value: \"a\""),
	S("{'ports':[{'port':80,'name':'HTTP'}]}", "spec.ports[0].name", INV,
	  "Invalid value: \"HTTP\": a lowercase RFC 1123 label must consist of lower case "
	  "alphanumeric characters or '-', and must start and end with an alphanumeric character "
	  "(e.g. 'my-name',  or '123-abc', regex used for validation is "
	  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"),
	S("{'ports':[{'port':80,'name':'a'},{'port':80,'name':'b'}]}", "spec.ports[1]", DUP,
	  "Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\""),
	S("{'ports':[{'port':80,'targetPort':70000}]}", "spec.ports[0].targetPort", INV,
	  PORT_RANGE),
	S("{'ports':[{'port':80,'targetPort':-5}]}", "spec.ports[0].targetPort", INV, PORT_RANGE),
	S("{'ports':[{'port':80,'targetPort':'http--x'}]}", "spec.ports[0].targetPort", INV,
	  "must not contain consecutive hyphens"),
	S("{'ports':[{'port':80,'targetPort':'abcdefghijklmnop'}]}", "spec.ports[0].targetPort",
	  INV, "must be no more than 15 characters"),
	S("{'ports':[{'port':80,'targetPort':'8080x'}]}", NULL, NULL, NULL),
	S("{'ports':[{'port':80,'targetPort':'8080a-'}]}", "spec.ports[0].targetPort", INV,
	  "must not begin or end with a hyphen"),
	S("{'ports':[{'port':80,'targetPort':'Http'}]}", "spec.ports[0].targetPort", INV,
	  "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"),
	S("{'ports':[{'port':80,'targetPort':true}]}", "spec.ports[0].targetPort", INV,
	  "must be an integer or a string"),
	S("{'ports':[{'port':80,'appProtocol':'a b'}]}", "spec.ports[0].appProtocol", INV, NULL),
	S("{'ports':[{'port':80,'nodePort':30080}]}", "spec.ports[0].nodePort", FORB,
	  "Forbidden: may not be used when `type` is 'ClusterIP'"),
	S("{'type':'NodePort','ports':[{'port':80,'nodePort':70000}]}", "spec.ports[0].nodePort",
	  INV, PORT_RANGE),
	S("{'type':'NodePort','ports':[{'port':80,'name':'a','nodePort':30080},"
	  "{'port':81,'name':'b','nodePort':30080}]}",
	  "spec.ports[1].nodePort", DUP, "Duplicate value: 30080"),
	S("{'type':'Foo','ports':[{'port':80}]}", "spec.type", NSUP,
	  "Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", "
	  "\"LoadBalancer\", \"NodePort\""),
	S("{'clusterIP':'abc','ports':[{'port':80}]}", "spec.clusterIPs[0]", INV,
	  "Invalid value: \"abc\": " IP_MSG),
	S("{'clusterIP':'198.18.0.300','ports':[{'port':80}]}", "spec.clusterIPs[0]", INV, IP_MSG),
	S("{'clusterIP':'198.18.0.1','clusterIPs':['198.18.0.2'],'ports':[{'port':80}]}",
	  "spec.clusterIPs", INV, "first value must match `clusterIP`"),
	S("{'clusterIP':'fd00::10','ports':[{'port':80}]}", "spec.clusterIPs[0]", INV,
	  "expected an IPv4 value as indicated by `ipFamilies[0]`"),
	S("{'clusterIPs':['None','198.18.0.1'],'clusterIP':'None','ports':[{'port':80}]}",
	  "spec.clusterIPs", INV, "'None' must be the first and only value"),
	S("{'ipFamilies':['IPv5'],'ports':[{'port':80}]}", "spec.ipFamilies[0]", NSUP,
	  "supported values: \"IPv4\", \"IPv6\""),
	S("{'ipFamilies':['IPv4','IPv4'],'ports':[{'port':80}]}", "spec.ipFamilies[1]", DUP, NULL),
	S("{'ipFamilyPolicy':'Whatever','ports':[{'port':80}]}", "spec.ipFamilyPolicy", NSUP, NULL),
	S("{'type':'ExternalName'}", "spec.externalName", REQ, NULL),
	S("{'type':'ExternalName','externalName':'.'}", "spec.externalName", REQ, NULL),
	S("{'type':'ExternalName','externalName':'Bad_Name.com'}", "spec.externalName", INV,
	  "a lowercase RFC 1123 subdomain must consist of"),
	S("{'type':'ExternalName','externalName':'db.example.com','clusterIP':'198.18.0.9'}",
	  "spec.clusterIPs", FORB, "may not be set for ExternalName services"),
	S("{'type':'ExternalName','externalName':'db.example.com','ipFamilyPolicy':'SingleStack'}",
	  "spec.ipFamilyPolicy", FORB, NULL),
	S("{'type':'ExternalName','externalName':'db.example.com','ipFamilies':['IPv4']}",
	  "spec.ipFamilies", FORB, NULL),
	S("{'sessionAffinity':'Sticky','ports':[{'port':80}]}", "spec.sessionAffinity", NSUP,
	  "supported values: \"ClientIP\", \"None\""),
	S("{'sessionAffinity':'ClientIP','sessionAffinityConfig':{'clientIP':{'timeoutSeconds':0}},"
	  "'ports':[{'port':80}]}",
	  "spec.sessionAffinityConfig.clientIP.timeoutSeconds", INV,
	  "Invalid value: 0: must be greater than 0 and less than 86400"),
	S("{'sessionAffinity':'ClientIP','sessionAffinityConfig':{'clientIP':{'timeoutSeconds':"
	  "86401}},"
	  "'ports':[{'port':80}]}",
	  "spec.sessionAffinityConfig.clientIP.timeoutSeconds", INV, NULL),
	S("{'sessionAffinity':'None','sessionAffinityConfig':{'clientIP':{'timeoutSeconds':5}},"
	  "'ports':[{'port':80}]}",
	  "spec.sessionAffinityConfig", FORB, "must not be set when session affinity is None"),
	S("{'externalTrafficPolicy':'Local','ports':[{'port':80}]}", "spec.externalTrafficPolicy",
	  INV, "may only be set for externally-accessible services"),
	S("{'type':'NodePort','externalTrafficPolicy':'Foo','ports':[{'port':80}]}",
	  "spec.externalTrafficPolicy", NSUP, "supported values: \"Cluster\", \"Local\""),
	S("{'internalTrafficPolicy':'Foo','ports':[{'port':80}]}", "spec.internalTrafficPolicy",
	  NSUP, NULL),
	S("{'externalIPs':['nope'],'ports':[{'port':80}]}", "spec.externalIPs[0]", INV, IP_MSG),
	S("{'externalIPs':['198.18.0.1','127.0.0.1'],'ports':[{'port':80}]}", "spec.externalIPs[1]",
	  INV, "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
	S("{'externalIPs':['0.0.0.0'],'ports':[{'port':80}]}", "spec.externalIPs[0]", INV,
	  "may not be unspecified (0.0.0.0)"),
	S("{'externalIPs':[5],'ports':[{'port':80}]}", "spec.externalIPs[0]", INV,
	  "must be a string"),
	S("{'selector':{'a b':'x'},'ports':[{'port':80}]}", "spec.selector", INV,
	  "Invalid value: \"a b\": name part must consist of alphanumeric characters"),
	S("{'selector':{'app':'-web'},'ports':[{'port':80}]}", "spec.selector", INV,
	  "a valid label must be an empty string or consist of alphanumeric characters"),
	S("{'type':'NodePort','clusterIP':'None','ports':[{'port':80}]}", "spec.clusterIPs[0]", INV,
	  "may not be set to 'None' for NodePort services"),
	S("{'type':'LoadBalancer','clusterIP':'None','ports':[{'port':80}]}", "spec.clusterIPs[0]",
	  INV, "may not be set to 'None' for LoadBalancer services"),
	S("{'type':'LoadBalancer','ports':[{'port':10250}]}", "spec.ports[0]", INV,
	  "may not expose port 10250 externally since it is used by kubelet"),
	S("{'healthCheckNodePort':30000,'ports':[{'port':80}]}", "spec.healthCheckNodePort", INV,
	  "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"),
	S("{'loadBalancerSourceRanges':['198.18.0.0/16'],'ports':[{'port':80}]}",
	  "spec.loadBalancerSourceRanges", FORB, NULL),
	S("{'type':'LoadBalancer','loadBalancerSourceRanges':['198.18.0.0/"
	  "99'],'ports':[{'port':80}]}",
	  "spec.loadBalancerSourceRanges[0]", INV, CIDR_MSG),
	S("{'allocateLoadBalancerNodePorts':true,'ports':[{'port':80}]}",
	  "spec.allocateLoadBalancerNodePorts", FORB, NULL),
	S("{'ports':{'port':80}}", "spec.ports", INV, "must be a list"),
	S("{'ports':['http']}", "spec.ports[0]", INV, "must be an object"),
	S("[]", "spec", INV, "Invalid value: []: must be an object"),
	S("{'type':5,'ports':[{'port':80}]}", "spec.type", INV, "must be a string"),
	{"Service", true,
	 "{'metadata':{'name':'123-abc','namespace':'default'},'spec':{'ports':[{'port':80}]}}",
	 NULL, "metadata.name", INV,
	 "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
	 "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
	 "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"},
	{"Service", true,
	 "{'metadata':{'name':'web.app','namespace':'default'},'spec':{'ports':[{'port':80}]}}",
	 NULL, "metadata.name", INV, "DNS-1035"},
	{"Service", true, "{'metadata':{'name':'web'},'spec':{'ports':[{'port':80}]}}", NULL,
	 "metadata.namespace", REQ, NULL},
};

/* Updates: spec.clusterIP is immutable except across ExternalName. */
#define SVC_OLD(spec) SVC(spec)
static const struct vcase service_update_cases[] = {
	{"Service", true, SVC("{'clusterIP':'198.18.0.10','ports':[{'port':80}]}"),
	 SVC_OLD("{'clusterIP':'198.18.0.10','ports':[{'port':80}]}"), NULL, NULL, NULL},
	/* omitted clusterIP keeps the stored one (patchAllocatedValues) */
	{"Service", true, SVC("{'ports':[{'port':8080}]}"),
	 SVC_OLD("{'clusterIP':'198.18.0.10','clusterIPs':['198.18.0.10'],'ports':[{'port':80}]}"),
	 NULL, NULL, NULL},
	{"Service", true, SVC("{'clusterIP':'198.18.0.11','ports':[{'port':80}]}"),
	 SVC_OLD("{'clusterIP':'198.18.0.10','clusterIPs':['198.18.0.10'],'ports':[{'port':80}]}"),
	 "spec.clusterIP", INV, "Invalid value: \"198.18.0.11\": field is immutable"},
	{"Service", true, SVC("{'clusterIP':'None','ports':[{'port':80}]}"),
	 SVC_OLD("{'clusterIP':'198.18.0.10','ports':[{'port':80}]}"), "spec.clusterIP", INV,
	 "field is immutable"},
	/* to ExternalName: the carried-over clusterIP is dropped, no error */
	{"Service", true,
	 SVC("{'type':'ExternalName','externalName':'x.example.com','clusterIP':'198.18.0.10',"
	     "'clusterIPs':['198.18.0.10'],'ipFamilies':['IPv4'],'ipFamilyPolicy':'SingleStack',"
	     "'internalTrafficPolicy':'Cluster'}"),
	 SVC_OLD("{'type':'ClusterIP','clusterIP':'198.18.0.10','clusterIPs':['198.18.0.10'],"
		 "'ipFamilies':['IPv4'],'ipFamilyPolicy':'SingleStack','internalTrafficPolicy':"
		 "'Cluster','ports':[{'port':80}]}"),
	 NULL, NULL, NULL},
	/* from ExternalName: any clusterIP may be requested */
	{"Service", true, SVC("{'clusterIP':'198.18.0.12','ports':[{'port':80}]}"),
	 SVC_OLD("{'type':'ExternalName','externalName':'x.example.com'}"), NULL, NULL, NULL},
	/* NodePort -> ClusterIP carrying the old nodePorts and policy: dropped */
	{"Service", true,
	 SVC("{'type':'ClusterIP','externalTrafficPolicy':'Cluster','clusterIP':'198.18.0.10',"
	     "'ports':[{'port':80,'nodePort':30080}]}"),
	 SVC_OLD("{'type':'NodePort','externalTrafficPolicy':'Cluster','clusterIP':'198.18.0.10',"
		 "'ports':[{'port':80,'nodePort':30080}]}"),
	 NULL, NULL, NULL},
	/* ... but a new nodePort on a ClusterIP service is an error */
	{"Service", true,
	 SVC("{'type':'ClusterIP','clusterIP':'198.18.0.10','ports':[{'port':80,'nodePort':30081}]"
	     "}"),
	 SVC_OLD("{'type':'NodePort','externalTrafficPolicy':'Cluster','clusterIP':'198.18.0.10',"
		 "'ports':[{'port':80,'nodePort':30080}]}"),
	 "spec.ports[0].nodePort", FORB, NULL},
	{"Service", true,
	 "{'metadata':{'name':'web2','namespace':'default'},'spec':{'ports':[{'port':80}]}}",
	 SVC_OLD("{'ports':[{'port':80}]}"), "metadata.name", INV, "field is immutable"},
	{"Service", true,
	 "{'metadata':{'name':'web','namespace':'default','uid':'b'},'spec':{'ports':[{'port':80}]}"
	 "}",
	 "{'metadata':{'name':'web','namespace':'default','uid':'a'},'spec':{'ports':[{'port':80}]}"
	 "}",
	 "metadata.uid", INV, "field is immutable"},
};

TEST(service_validation)
{
	RUN(service_cases);
}

TEST(service_update_validation)
{
	RUN(service_update_cases);
}

/* --- metadata (any kind) --------------------------------------------------------- */

#define CM(meta) "{'metadata':" meta ",'data':{}}"
#define M(meta, field, reason, msg)                                   \
	{                                                             \
		"ConfigMap", true, CM(meta), NULL, field, reason, msg \
	}
#define M_OK(meta) M(meta, NULL, NULL, NULL)
#define NS	   "'namespace':'default'"

static const struct vcase meta_cases[] = {
	M_OK("{'name':'cfg'," NS "}"),
	M_OK("{'name':'cfg.v1.example'," NS "}"),
	M_OK("{'name':'cfg-abc12','generateName':'cfg-'," NS "}"),
	M_OK("{'name':'c'," NS ",'labels':{'app':'web','example.com/tier':'front_end.1','e':''}}"),
	M_OK("{'name':'c'," NS ",'annotations':{'Example.COM/Some_Key':'any value at all \\n',"
	     "'kubectl.kubernetes.io/last-applied-configuration':'{}'}}"),
	M_OK("{'name':'c'," NS ",'finalizers':['example.com/cleanup'],'generation':3}"),
	M_OK("{'name':'c'," NS ",'ownerReferences':[{'apiVersion':'apps/v1','kind':'ReplicaSet',"
	     "'name':'rs','uid':'123'}]}"),
	{"ConfigMap", true, "{'data':{}}", NULL, "metadata.name", REQ,
	 "Required value: name or generateName is required"},
	M("{" NS "}", "metadata.name", REQ, "name or generateName is required"),
	M("{'name':''," NS "}", "metadata.name", REQ, NULL),
	M("{'name':'UPPER'," NS "}", "metadata.name", INV,
	  "Invalid value: \"UPPER\": a lowercase RFC 1123 subdomain must consist of lower case "
	  "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
	  "character (e.g. 'example.com', regex used for validation is "
	  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
	M("{'name':'a..b'," NS "}", "metadata.name", INV, NULL),
	M("{'name':'-a'," NS "}", "metadata.name", INV, NULL),
	M("{'name':'a_b'," NS "}", "metadata.name", INV, NULL),
	M("{'name':5," NS "}", "metadata.name", INV, "Invalid value: 5: must be a string"),
	M("{'name':'c','namespace':'Bad'}", "metadata.namespace", INV, "RFC 1123 label"),
	M("{'name':'c'}", "metadata.namespace", REQ, NULL),
	M("{'name':'c-1','generateName':'Cfg-'," NS "}", "metadata.generateName", INV, NULL),
	M("{'name':'c'," NS ",'generation':-1}", "metadata.generation", INV,
	  "Invalid value: -1: must be greater than or equal to 0"),
	M("{'name':'c'," NS ",'labels':{'a/b/c':'x'}}", "metadata.labels", INV,
	  "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
	  "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
	  "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') "
	  "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"),
	M("{'name':'c'," NS ",'labels':{'/x':'y'}}", "metadata.labels", INV,
	  "prefix part must be non-empty"),
	M("{'name':'c'," NS ",'labels':{'Example.com/x':'y'}}", "metadata.labels", INV,
	  "prefix part a lowercase RFC 1123 subdomain"),
	M("{'name':'c'," NS ",'labels':{'example.com/':'y'}}", "metadata.labels", INV,
	  "name part must be non-empty"),
	M("{'name':'c'," NS ",'labels':{'':'y'}}", "metadata.labels", INV,
	  "name part must be non-empty"),
	M("{'name':'c'," NS
	  ",'labels':{'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa':'y'}}",
	  "metadata.labels", INV, "name part must be no more than 63 characters"),
	M("{'name':'c'," NS ",'labels':{'k':'a b'}}", "metadata.labels", INV,
	  "Invalid value: \"a b\": a valid label must be an empty string or consist of "
	  "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
	  "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
	  "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
	M("{'name':'c'," NS
	  ",'labels':{'k':'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'}}",
	  "metadata.labels", INV, "must be no more than 63 characters"),
	M("{'name':'c'," NS ",'labels':{'k':'x_'}}", "metadata.labels", INV, NULL),
	/* values in messages are quoted like Go's %q */
	M("{'name':'c'," NS ",'labels':{'k':'a\\\"b\\n'}}", "metadata.labels", INV,
	  "Invalid value: \"a\\\"b\\n\": a valid label"),
	M("{'name':'c'," NS ",'labels':{'k':1}}", "metadata.labels[k]", INV, "must be a string"),
	M("{'name':'c'," NS ",'labels':['a']}", "metadata.labels", INV, "must be an object"),
	M("{'name':'c'," NS ",'annotations':{'bad key':'v'}}", "metadata.annotations", INV,
	  "Invalid value: \"bad key\": name part must consist of"),
	M("{'name':'c'," NS ",'annotations':{'k':true}}", "metadata.annotations[k]", INV,
	  "must be a string"),
	M("{'name':'c'," NS ",'finalizers':['bad finalizer']}", "metadata.finalizers[0]", INV,
	  NULL),
	M("{'name':'c'," NS ",'ownerReferences':[{'apiVersion':'v1','kind':'Pod','name':'p'}]}",
	  "metadata.ownerReferences[0].uid", INV, "Invalid value: \"\": must not be empty"),
	M("{'name':'c'," NS
	  ",'ownerReferences':[{'apiVersion':'apps/','kind':'X','name':'p','uid':'u'}]}",
	  "metadata.ownerReferences[0].apiVersion", INV, "version must not be empty"),
	{"ConfigMap", true, "{'metadata':'x'}", NULL, "metadata", INV, "must be an object"},
	{"Node", false, "{'metadata':{'name':'n1','namespace':'default'}}", NULL,
	 "metadata.namespace", FORB, "Forbidden: not allowed on this type"},
	/* an unknown kind gets the metadata checks only */
	{"Widget", true, "{'metadata':{'name':'w'," NS "},'spec':{'anything':[1,2,3]}}", NULL, NULL,
	 NULL, NULL},
	{"Widget", true, "{'metadata':{'name':'W'," NS "}}", NULL, "metadata.name", INV, NULL},
};

TEST(metadata_validation)
{
	RUN(meta_cases);
}

TEST(metadata_annotations_size_limit)
{
	size_t big = 256 * 1024;
	char *val = malloc(big + 1);
	struct json_object *obj = jq("{'metadata':{'name':'c','namespace':'d','annotations':{}}}");
	struct json_object *ann = sl_json_path(obj, "metadata", "annotations", (char *)NULL);
	struct api_causes c = {0};

	if (!ASSERT_NOT_NULL(val, "malloc") || !ASSERT_NOT_NULL(ann, "parse"))
		goto out;
	memset(val, 'x', big);
	val[big] = '\0';
	/* exactly 256 KiB of key + value is allowed */
	val[big - 1] = '\0';
	json_object_object_add(ann, "k", json_object_new_string(val));
	ASSERT_EQ(validate_object("ConfigMap", true, obj, NULL, &c), 0, "at the limit");
	api_causes_fini(&c);
	val[big - 1] = 'x';
	json_object_object_add(ann, "k", json_object_new_string(val));
	ASSERT_EQ(validate_object("ConfigMap", true, obj, NULL, &c), 1, "one byte over");
	if (ASSERT_NOT_NULL(find_cause(&c, "metadata.annotations", CAUSE_TOO_LONG,
				       "Too long: may not be more than 262144 bytes"),
			    "too long"))
		;
	else
		dump_causes(&c);
out:
	api_causes_fini(&c);
	json_object_put(obj);
	free(val);
}

TEST(long_names)
{
	char name[300], json[400];
	struct api_causes c = {0};
	struct json_object *obj;

	memset(name, 'a', 254);
	name[254] = '\0';
	snprintf(json, sizeof(json), "{'metadata':{'name':'%s','namespace':'d'}}", name);
	obj = jq(json);
	validate_object("ConfigMap", true, obj, NULL, &c);
	ASSERT_NOT_NULL(find_cause(&c, "metadata.name", CAUSE_INVALID,
				   "must be no more than 253 characters"),
			"254 chars");
	api_causes_fini(&c);
	json_object_put(obj);

	name[253] = '\0';
	snprintf(json, sizeof(json), "{'metadata':{'name':'%s','namespace':'d'}}", name);
	obj = jq(json);
	ASSERT_EQ(validate_object("ConfigMap", true, obj, NULL, &c), 0, "253 chars is fine");
	api_causes_fini(&c);
	json_object_put(obj);

	name[64] = '\0';
	snprintf(json, sizeof(json), "{'metadata':{'name':'%s'}}", name);
	obj = jq(json);
	validate_object("Namespace", false, obj, NULL, &c);
	ASSERT_NOT_NULL(find_cause(&c, "metadata.name", CAUSE_INVALID, "Invalid value: \"aaaa"),
			"namespace name value");
	ASSERT_NOT_NULL(find_cause(&c, "metadata.name", CAUSE_INVALID,
				   "must be no more than 63 characters"),
			"64-char namespace");
	api_causes_fini(&c);
	json_object_put(obj);
}

TEST(name_helpers)
{
	ASSERT_NULL(validate_dns1123_label("my-name"), "label ok");
	ASSERT_NULL(validate_dns1123_label("123-abc"), "label digits ok");
	ASSERT_STREQ(
		validate_dns1123_label("My-Name"),
		"a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
		"or '-', and must start and end with an alphanumeric character (e.g. "
		"'my-name',  or '123-abc', regex used for validation is "
		"'[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
		"upstream label message");
	ASSERT_NOT_NULL(validate_dns1123_label("a.b"), "dot in label");
	ASSERT_NOT_NULL(validate_dns1123_label(""), "empty label");
	ASSERT_NOT_NULL(validate_dns1123_label("a-"), "trailing dash");
	ASSERT_NOT_NULL(validate_dns1123_label(NULL), "NULL label");
	ASSERT_STREQ(validate_dns1123_label(
			     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
		     "must be no more than 63 characters", "64 chars");
	ASSERT_NULL(validate_dns1123_subdomain("a.b-c.d"), "subdomain ok");
	ASSERT_NOT_NULL(validate_dns1123_subdomain("a..b"), "empty label in subdomain");
	ASSERT_NOT_NULL(validate_dns1123_subdomain(".a"), "leading dot");
	ASSERT_NOT_NULL(validate_dns1123_subdomain("a.-b"), "label starting with dash");
	ASSERT_NOT_NULL(validate_dns1123_subdomain("A.b"), "upper case");
}

/* The selector module checks label syntax too; the two must agree. */
TEST(label_syntax_agrees_with_selector_module)
{
	static const char *const keys[] = {
		"app",
		"a.b",
		"a_b",
		"A-1",
		"example.com/app",
		"-a",
		"a-",
		"a b",
		"",
		"/a",
		"ex.com/",
		"a/b/c",
		"Ex.com/a",
		"x.y/z_",
		"k8s.io/a.b-c_d",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	static const char *const values[] = {
		"",
		"web",
		"Web_1.0",
		"-x",
		"x-",
		"a b",
		"a/b",
		"1",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char json[256];
		struct json_object *obj;
		struct api_causes c = {0};
		bool mine;

		snprintf(json, sizeof(json),
			 "{'metadata':{'name':'c','namespace':'d','labels':{'%s':'v'}}}", keys[i]);
		obj = jq(json);
		mine = validate_object("ConfigMap", true, obj, NULL, &c) == 0;
		if (!ASSERT_EQ(mine, sl_label_key_check(keys[i]) == NULL, keys[i]))
			dump_causes(&c);
		api_causes_fini(&c);
		json_object_put(obj);
	}
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char json[256];
		struct json_object *obj;
		struct api_causes c = {0};
		bool mine;

		snprintf(json, sizeof(json),
			 "{'metadata':{'name':'c','namespace':'d','labels':{'k':'%s'}}}",
			 values[i]);
		obj = jq(json);
		mine = validate_object("ConfigMap", true, obj, NULL, &c) == 0;
		ASSERT_EQ(mine, sl_label_value_check(values[i]) == NULL, values[i]);
		api_causes_fini(&c);
		json_object_put(obj);
	}
}

/* --- Pod ------------------------------------------------------------------------------ */

#define POD_META  "'metadata':{'name':'web-0','namespace':'default'}"
#define POD(spec) "{" POD_META ",'spec':" spec "}"
#define P(spec, field, reason, msg)                              \
	{                                                        \
		"Pod", true, POD(spec), NULL, field, reason, msg \
	}
#define P_OK(spec) P(spec, NULL, NULL, NULL)
#define CTR	   "{'name':'app','image':'nginx:1.25'}"

static const struct vcase pod_cases[] = {
	P_OK("{'containers':[" CTR "]}"),
	P_OK("{'containers':[{'name':'app','image':'nginx','ports':[{'name':'http','containerPort':"
	     "80},"
	     "{'name':'metrics','containerPort':9090,'protocol':'TCP'},{'containerPort':53,'"
	     "protocol':'UDP'}]}]}"),
	P_OK("{'initContainers':[{'name':'init','image':'busybox'}],'containers':[" CTR "],"
	     "'restartPolicy':'OnFailure','nodeName':'node-1.lab','hostname':'web','subdomain':'"
	     "svc'}"),
	P_OK("{'containers':[" CTR "],'restartPolicy':'Never','dnsPolicy':'Default',"
	     "'activeDeadlineSeconds':60,'serviceAccountName':'default','nodeSelector':{'disk':'"
	     "ssd'}}"),
	P_OK("{'containers':[" CTR "],'tolerations':[{'key':'node.kubernetes.io/not-ready',"
	     "'operator':'Exists','effect':'NoExecute','tolerationSeconds':300},{'operator':'"
	     "Exists'},"
	     "{'key':'k','value':'v','effect':'NoSchedule'}]}"),
	P_OK("{'containers':[{'name':'a','image':'x','ports':[{'containerPort':80,'hostPort':8080}]"
	     "}],"
	     "'hostNetwork':false}"),
	P("{}", "spec.containers", REQ, NULL),
	P("{'containers':[]}", "spec.containers", REQ, NULL),
	{"Pod", true, "{" POD_META "}", NULL, "spec.containers", REQ, NULL},
	P("{'containers':[{'name':'app'}]}", "spec.containers[0].image", REQ, "Required value"),
	P("{'containers':[{'name':'app','image':''}]}", "spec.containers[0].image", REQ, NULL),
	P("{'containers':[{'name':'app','image':' nginx'}]}", "spec.containers[0].image", INV,
	  "must not have leading or trailing whitespace"),
	P("{'containers':[{'image':'nginx'}]}", "spec.containers[0].name", REQ, NULL),
	P("{'containers':[{'name':'App','image':'nginx'}]}", "spec.containers[0].name", INV,
	  "RFC 1123 label"),
	P("{'containers':[" CTR "," CTR "]}", "spec.containers[1].name", DUP,
	  "Duplicate value: \"app\""),
	P("{'initContainers':[" CTR "],'containers':[" CTR "]}", "spec.containers[0].name", DUP,
	  NULL),
	P("{'containers':['nginx']}", "spec.containers[0]", INV, "must be an object"),
	P("{'containers':[{'name':'a','image':'x','ports':[{'name':'http'}]}]}",
	  "spec.containers[0].ports[0].containerPort", REQ, NULL),
	P("{'containers':[{'name':'a','image':'x','ports':[{'containerPort':0}]}]}",
	  "spec.containers[0].ports[0].containerPort", REQ, NULL),
	P("{'containers':[{'name':'a','image':'x','ports':[{'containerPort':70000}]}]}",
	  "spec.containers[0].ports[0].containerPort", INV, "Invalid value: 70000: " PORT_RANGE),
	P("{'containers':[{'name':'a','image':'x','ports':[{'containerPort':80,'hostPort':70000}]}]"
	  "}",
	  "spec.containers[0].ports[0].hostPort", INV, PORT_RANGE),
	P("{'containers':[{'name':'a','image':'x','ports':[{'containerPort':80,'name':'http--a'}]}]"
	  "}",
	  "spec.containers[0].ports[0].name", INV, "must not contain consecutive hyphens"),
	P("{'containers':[{'name':'a','image':'x','ports':[{'containerPort':80,'name':'123'}]}]}",
	  "spec.containers[0].ports[0].name", INV, "must contain at least one letter (a-z)"),
	P("{'containers':[{'name':'a','image':'x','ports':[{'containerPort':80,'name':'web'},"
	  "{'containerPort':81,'name':'web'}]}]}",
	  "spec.containers[0].ports[1].name", DUP, NULL),
	P("{'containers':[{'name':'a','image':'x','ports':[{'containerPort':80,'protocol':'ICMP'}]}"
	  "]}",
	  "spec.containers[0].ports[0].protocol", NSUP, NULL),
	P("{'containers':[" CTR "],'restartPolicy':'Sometimes'}", "spec.restartPolicy", NSUP,
	  "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", "
	  "\"Never\""),
	P("{'containers':[" CTR "],'dnsPolicy':'Cluster'}", "spec.dnsPolicy", NSUP,
	  "supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\""),
	P("{'containers':[" CTR "],'nodeName':'Node_1'}", "spec.nodeName", INV,
	  "RFC 1123 subdomain"),
	P("{'containers':[" CTR "],'activeDeadlineSeconds':0}", "spec.activeDeadlineSeconds", INV,
	  "Invalid value: 0: must be between 1 and 2147483647, inclusive"),
	P("{'containers':[" CTR "],'hostname':'Web'}", "spec.hostname", INV, NULL),
	P("{'containers':[" CTR "],'terminationGracePeriodSeconds':'30'}",
	  "spec.terminationGracePeriodSeconds", INV, "must be an integer"),
	P("{'containers':[{'name':'a','image':'x','imagePullPolicy':'Sometimes'}]}",
	  "spec.containers[0].imagePullPolicy", NSUP, NULL),
	P("{'containers':[" CTR "],'tolerations':[{'key':'k','operator':'Maybe'}]}",
	  "spec.tolerations[0].operator", NSUP, "supported values: \"Equal\", \"Exists\""),
	P("{'containers':[" CTR "],'tolerations':[{'operator':'Equal','value':'v'}]}",
	  "spec.tolerations[0].operator", INV, "operator must be Exists when `key` is empty"),
	P("{'containers':[" CTR "],'tolerations':[{'key':'k','operator':'Exists','value':'v'}]}",
	  "spec.tolerations[0].operator", INV, "value must be empty when `operator` is 'Exists'"),
	P("{'containers':[" CTR "],'tolerations':[{'key':'k','effect':'Sometimes'}]}",
	  "spec.tolerations[0].effect", NSUP,
	  "supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""),
	P("{'containers':[" CTR
	  "],'tolerations':[{'key':'k','effect':'NoSchedule','tolerationSeconds':5}]}",
	  "spec.tolerations[0].effect", INV,
	  "effect must be 'NoExecute' when `tolerationSeconds` is set"),
	P("{'containers':[" CTR "],'tolerations':[{'key':'bad key'}]}", "spec.tolerations[0].key",
	  INV, NULL),
};

#define POD_SPEC_OLD                                                                               \
	"{'containers':[{'name':'app','image':'nginx:1.25','ports':[{'containerPort':80}]}],"      \
	"'tolerations':[{'key':'a','operator':'Exists'}],'activeDeadlineSeconds':100,'nodeName':'" \
	"n1'}"
#define POD_OLD POD(POD_SPEC_OLD)
#define PU(spec, field, reason, msg)                                \
	{                                                           \
		"Pod", true, POD(spec), POD_OLD, field, reason, msg \
	}

static const struct vcase pod_update_cases[] = {
	PU(POD_SPEC_OLD, NULL, NULL, NULL),
	/* image changes are allowed */
	PU("{'containers':[{'name':'app','image':'nginx:1.26','ports':[{'containerPort':80}]}],"
	   "'tolerations':[{'key':'a','operator':'Exists'}],'activeDeadlineSeconds':100,'nodeName':"
	   "'n1'}",
	   NULL, NULL, NULL),
	/* tolerations may be added, activeDeadlineSeconds lowered */
	PU("{'containers':[{'name':'app','image':'nginx:1.25','ports':[{'containerPort':80}]}],"
	   "'tolerations':[{'key':'a','operator':'Exists'},{'key':'b','operator':'Exists'}],"
	   "'activeDeadlineSeconds':50,'nodeName':'n1'}",
	   NULL, NULL, NULL),
	PU("{'containers':[{'name':'app','image':'nginx:1.25','ports':[{'containerPort':80}]}],"
	   "'tolerations':[{'key':'a','operator':'Exists'}],'activeDeadlineSeconds':200,'nodeName':"
	   "'n1'}",
	   "spec.activeDeadlineSeconds", INV, "must be less than or equal to previous value"),
	PU("{'containers':[{'name':'app','image':'nginx:1.25','ports':[{'containerPort':80}]}],"
	   "'tolerations':[{'key':'a','operator':'Exists'}],'nodeName':'n1'}",
	   "spec.activeDeadlineSeconds", INV,
	   "must not update from a positive integer to nil value"),
	PU("{'containers':[{'name':'app','image':'nginx:1.25','ports':[{'containerPort':81}]}],"
	   "'tolerations':[{'key':'a','operator':'Exists'}],'activeDeadlineSeconds':100,'nodeName':"
	   "'n1'}",
	   "spec", FORB,
	   "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
	   "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
	   "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to "
	   "be set to 1 if it was previously negative)"),
	PU("{'containers':[{'name':'app','image':'nginx:1.25','ports':[{'containerPort':80}]},"
	   "{'name':'side','image':'busybox'}],"
	   "'tolerations':[{'key':'a','operator':'Exists'}],'activeDeadlineSeconds':100,'nodeName':"
	   "'n1'}",
	   "spec", FORB, "pod updates may not change fields other than"),
	PU("{'containers':[{'name':'app','image':'nginx:1.25','ports':[{'containerPort':80}]}],"
	   "'tolerations':[{'key':'a','operator':'Exists'}],'activeDeadlineSeconds':100,'nodeName':"
	   "'n2'}",
	   "spec", FORB, NULL),
	PU("{'containers':[{'name':'app','image':'nginx:1.25','ports':[{'containerPort':80}]}],"
	   "'activeDeadlineSeconds':100,'nodeName':'n1'}",
	   "spec.tolerations", FORB,
	   "existing toleration can not be modified except its tolerationSeconds"),
	/* a metadata-only change */
	{"Pod", true,
	 "{'metadata':{'name':'web-0','namespace':'default','labels':{'x':'y'}},'spec'"
	 ":" POD_SPEC_OLD "}",
	 POD_OLD, NULL, NULL, NULL},
};

TEST(pod_validation)
{
	RUN(pod_cases);
}

TEST(pod_update_validation)
{
	RUN(pod_update_cases);
}

/* --- EndpointSlice / Endpoints ------------------------------------------------------ */

#define ES_META                                                                        \
	"'metadata':{'name':'web-abc','namespace':'default','labels':{'kubernetes.io/" \
	"service-name':'web'}}"
#define ES(body) "{" ES_META "," body "}"
#define E(body, field, reason, msg)                                       \
	{                                                                 \
		"EndpointSlice", true, ES(body), NULL, field, reason, msg \
	}
#define E_OK(body) E(body, NULL, NULL, NULL)

static const struct vcase endpointslice_cases[] = {
	E_OK("'addressType':'IPv4','endpoints':[{'addresses':['198.18.0.5'],'conditions':{'ready':"
	     "true,"
	     "'serving':true,'terminating':false},'nodeName':'node-1','zone':'z1'}],"
	     "'ports':[{'name':'http','port':8080,'protocol':'TCP'}]"),
	E_OK("'addressType':'IPv6','endpoints':[{'addresses':['fd00::5']}]"),
	E_OK("'addressType':'FQDN','endpoints':[{'addresses':['db.example.com']}]"),
	E_OK("'addressType':'IPv4'"),
	E_OK("'addressType':'IPv4','endpoints':[],'ports':[{'port':80},{'name':'b','port':81}]"),
	E("'endpoints':[]", "addressType", REQ, NULL),
	E("'addressType':'IP'", "addressType", NSUP,
	  "Unsupported value: \"IP\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""),
	E("'addressType':'IPv4','endpoints':[{'addresses':[]}]", "endpoints[0].addresses", REQ,
	  "Required value: must contain at least 1 address"),
	E("'addressType':'IPv4','endpoints':[{}]", "endpoints[0].addresses", REQ, NULL),
	E("'addressType':'IPv4','endpoints':[{'addresses':['fd00::1']}]",
	  "endpoints[0].addresses[0]", INV,
	  "Invalid value: \"fd00::1\": must be a valid IPv4 address"),
	E("'addressType':'IPv6','endpoints':[{'addresses':['198.18.0.1']}]",
	  "endpoints[0].addresses[0]", INV, "must be a valid IPv6 address"),
	E("'addressType':'IPv4','endpoints':[{'addresses':['198.18.0.1','127.0.0.1']}]",
	  "endpoints[0].addresses[1]", INV, "loopback"),
	E("'addressType':'IPv4','endpoints':[{'addresses':['0.0.0.0']}]",
	  "endpoints[0].addresses[0]", INV, "may not be unspecified (0.0.0.0)"),
	E("'addressType':'IPv4','endpoints':[{'addresses':['169.254.169.254']}]",
	  "endpoints[0].addresses[0]", INV, "link-local range"),
	E("'addressType':'IPv4','endpoints':[{'addresses':['224.0.0.1']}]",
	  "endpoints[0].addresses[0]", INV, "link-local multicast"),
	E("'addressType':'IPv6','endpoints':[{'addresses':['::1']}]", "endpoints[0].addresses[0]",
	  INV, "loopback"),
	E("'addressType':'IPv6','endpoints':[{'addresses':['fe80::1']}]",
	  "endpoints[0].addresses[0]", INV, "link-local range"),
	E("'addressType':'FQDN','endpoints':[{'addresses':['localhost']}]",
	  "endpoints[0].addresses[0]", INV,
	  "should be a domain with at least two segments separated by dots"),
	E("'addressType':'FQDN','endpoints':[{'addresses':['Bad_Host.com']}]",
	  "endpoints[0].addresses[0]", INV, "RFC 1123 subdomain"),
	E("'addressType':'IPv4','endpoints':[{'addresses':['198.18.0.1'],'conditions':{'ready':'"
	  "yes'}}]",
	  "endpoints[0].conditions.ready", INV, "Invalid value: \"yes\": must be a boolean"),
	E("'addressType':'IPv4','endpoints':[{'addresses':['198.18.0.1'],'nodeName':'Bad_Node'}]",
	  "endpoints[0].nodeName", INV, NULL),
	E("'addressType':'IPv4','endpoints':[{'addresses':['198.18.0.1'],'hostname':'a.b'}]",
	  "endpoints[0].hostname", INV, NULL),
	E("'addressType':'IPv4','ports':[{'port':80},{'port':81}]", "ports[1].name", DUP,
	  "Duplicate value: \"\""),
	E("'addressType':'IPv4','ports':[{'name':'HTTP','port':80}]", "ports[0].name", INV, NULL),
	E("'addressType':'IPv4','ports':[{'port':80,'protocol':'X'}]", "ports[0].protocol", NSUP,
	  NULL),
	E("'addressType':'IPv4','ports':[{'port':0}]", "ports[0].port", INV, PORT_RANGE),
	E("'addressType':'IPv4','ports':[{'port':80,'appProtocol':'a//b'}]", "ports[0].appProtocol",
	  INV, NULL),
	{"EndpointSlice", true,
	 "{'metadata':{'name':'x','namespace':'d','labels':{'kubernetes.io/service-name':'bad "
	 "value!'}},"
	 "'addressType':'IPv4'}",
	 NULL, "metadata.labels", INV, NULL},
	{"EndpointSlice", true, ES("'addressType':'IPv6'"), ES("'addressType':'IPv4'"),
	 "addressType", INV, "Invalid value: \"IPv6\": field is immutable"},
	{"EndpointSlice", true,
	 ES("'addressType':'IPv4','endpoints':[{'addresses':['198.18.0.2']}]"),
	 ES("'addressType':'IPv4'"), NULL, NULL, NULL},
};

#define EP(subsets) "{'metadata':{'name':'web','namespace':'default'},'subsets':" subsets "}"
#define EPC(subsets, field, reason, msg)                                 \
	{                                                                \
		"Endpoints", true, EP(subsets), NULL, field, reason, msg \
	}

static const struct vcase endpoints_cases[] = {
	EPC("[{'addresses':[{'ip':'198.18.0.5','nodeName':'n1','hostname':'web-0'}],"
	    "'ports':[{'port':8080}]}]",
	    NULL, NULL, NULL),
	EPC("[{'notReadyAddresses':[{'ip':'198.18.0.6'}],'ports':[{'name':'a','port':1},"
	    "{'name':'b','port':2,'protocol':'UDP'}]}]",
	    NULL, NULL, NULL),
	EPC("[]", NULL, NULL, NULL),
	{"Endpoints", true, "{'metadata':{'name':'web','namespace':'default'}}", NULL, NULL, NULL,
	 NULL},
	EPC("[{'ports':[{'port':80}]}]", "subsets[0]", REQ,
	    "must specify `addresses` or `notReadyAddresses`"),
	EPC("[{'addresses':[{'ip':'x'}]}]", "subsets[0].addresses[0].ip", INV, IP_MSG),
	EPC("[{'addresses':[{}]}]", "subsets[0].addresses[0].ip", INV, IP_MSG),
	EPC("[{'addresses':[{'ip':'127.0.0.1'}]}]", "subsets[0].addresses[0].ip", INV, "loopback"),
	EPC("[{'notReadyAddresses':[{'ip':'1.2.3'}]}]", "subsets[0].notReadyAddresses[0].ip", INV,
	    NULL),
	EPC("[{'addresses':[{'ip':'198.18.0.5','hostname':'Web'}]}]",
	    "subsets[0].addresses[0].hostname", INV, NULL),
	EPC("[{'addresses':[{'ip':'198.18.0.5'}],'ports':[{'port':0}]}]",
	    "subsets[0].ports[0].port", INV, PORT_RANGE),
	EPC("[{'addresses':[{'ip':'198.18.0.5'}],'ports':[{}]}]", "subsets[0].ports[0].port", INV,
	    PORT_RANGE),
	EPC("[{'addresses':[{'ip':'198.18.0.5'}],'ports':[{'port':1},{'port':2}]}]",
	    "subsets[0].ports[0].name", REQ, NULL),
	EPC("[{'addresses':[{'ip':'198.18.0.5'}],'ports':[{'port':1,'protocol':'ICMP'}]}]",
	    "subsets[0].ports[0].protocol", NSUP, NULL),
	EPC("{}", "subsets", INV, "must be a list"),
};

TEST(endpointslice_validation)
{
	RUN(endpointslice_cases);
}

TEST(endpoints_validation)
{
	RUN(endpoints_cases);
}

/* Limits are counted, not guessed: build 1001 endpoints and 101 addresses. */
TEST(endpointslice_limits)
{
	struct json_object *obj = jq(ES("'addressType':'IPv4','endpoints':[]"));
	struct json_object *eps = sl_json_get(obj, "endpoints");
	struct json_object *addrs = json_object_new_array();
	struct api_causes c = {0};

	if (!ASSERT_NOT_NULL(obj, "parse"))
		return;
	for (int i = 0; i < 101; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "198.18.1.%d", i + 1);
		json_object_array_add(addrs, json_object_new_string(ip));
	}
	json_object_array_add(eps, json_object_new_object());
	json_object_object_add(json_object_array_get_idx(eps, 0), "addresses", addrs);
	validate_object("EndpointSlice", true, obj, NULL, &c);
	if (!ASSERT_NOT_NULL(find_cause(&c, "endpoints[0].addresses", "FieldValueTooMany",
					"Too many: 101: must have at most 100 items"),
			     "101 addresses"))
		dump_causes(&c);
	api_causes_fini(&c);
	json_object_array_del_idx(addrs, 100, 1);
	ASSERT_EQ(validate_object("EndpointSlice", true, obj, NULL, &c), 0, "100 addresses");
	api_causes_fini(&c);

	for (int i = 1; i < 1001; i++) {
		struct json_object *ep = json_object_new_object();
		struct json_object *a = json_object_new_array();

		json_object_array_add(a, json_object_new_string("198.18.2.1"));
		json_object_object_add(ep, "addresses", a);
		json_object_array_add(eps, ep);
	}
	validate_object("EndpointSlice", true, obj, NULL, &c);
	ASSERT_NOT_NULL(find_cause(&c, "endpoints", "FieldValueTooMany",
				   "Too many: 1001: must have at most 1000 items"),
			"1001 endpoints");
	api_causes_fini(&c);
	json_object_array_del_idx(eps, 1000, 1);
	ASSERT_EQ(validate_object("EndpointSlice", true, obj, NULL, &c), 0, "1000 endpoints");
	api_causes_fini(&c);
	json_object_put(obj);
}

/* --- Node, NetworkPolicy, Namespace, Event, Lease, ConfigMap ------------------------ */

#define NODE(spec) "{'metadata':{'name':'node-1'},'spec':" spec "}"
#define N(spec, field, reason, msg)                                 \
	{                                                           \
		"Node", false, NODE(spec), NULL, field, reason, msg \
	}

static const struct vcase node_cases[] = {
	N("{}", NULL, NULL, NULL),
	N("{'podCIDR':'10.244.1.0/24','podCIDRs':['10.244.1.0/24','fd00:10:244:1::/64'],"
	  "'taints':[{'key':'node-role.kubernetes.io/control-plane','effect':'NoSchedule'},"
	  "{'key':'dedicated','value':'gpu','effect':'NoExecute'},"
	  "{'key':'dedicated','value':'gpu','effect':'NoSchedule'}],'unschedulable':true}",
	  NULL, NULL, NULL),
	{"Node", false, "{'metadata':{'name':'Node_1'}}", NULL, "metadata.name", INV,
	 "RFC 1123 subdomain"},
	{"Node", false, "{'metadata':{'name':'node-1.lab.example'}}", NULL, NULL, NULL, NULL},
	N("{'podCIDR':'10.244.1.0/33'}", "spec.podCIDR", INV,
	  "Invalid value: \"10.244.1.0/33\": " CIDR_MSG),
	N("{'podCIDR':'10.244.1.0'}", "spec.podCIDR", INV, CIDR_MSG),
	N("{'podCIDRs':['10.244.1.0/24','x']}", "spec.podCIDRs[1]", INV, CIDR_MSG),
	N("{'podCIDRs':['10.244.1.0/24','10.244.2.0/24']}", "spec.podCIDRs", INV,
	  "may specify no more than one CIDR for each IP family"),
	N("{'taints':[{'key':'k','effect':'Sometimes'}]}", "spec.taints[0].effect", NSUP,
	  "supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""),
	N("{'taints':[{'key':'k'}]}", "spec.taints[0].effect", REQ, NULL),
	N("{'taints':[{'key':'bad key','effect':'NoSchedule'}]}", "spec.taints[0].key", INV, NULL),
	N("{'taints':[{'effect':'NoSchedule'}]}", "spec.taints[0].key", INV,
	  "name part must be non-empty"),
	N("{'taints':[{'key':'k','value':'a b','effect':'NoSchedule'}]}", "spec.taints[0].value",
	  INV, NULL),
	N("{'taints':[{'key':'k','effect':'NoSchedule'},{'key':'k','value':'x','effect':'"
	  "NoSchedule'}]}",
	  "spec.taints[1]", DUP, "taints must be unique by key and effect pair"),
	N("{'unschedulable':'yes'}", "spec.unschedulable", INV, "must be a boolean"),
};

#define NP(spec) "{'metadata':{'name':'deny','namespace':'default'},'spec':" spec "}"
#define NPC(spec, field, reason, msg)                                     \
	{                                                                 \
		"NetworkPolicy", true, NP(spec), NULL, field, reason, msg \
	}
#define NP_OK(spec) NPC(spec, NULL, NULL, NULL)

static const struct vcase netpol_cases[] = {
	NP_OK("{'podSelector':{}}"),
	NP_OK("{'podSelector':{'matchLabels':{'app':'db'}},'ingress':[{'from':[{'podSelector':"
	      "{'matchLabels':{'app':'web'}},'namespaceSelector':{'matchExpressions':[{'key':'team'"
	      ","
	      "'operator':'In','values':['a','b']}]}}],'ports':[{'port':5432}]}]}"),
	NP_OK("{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':'198.18.0.0/16',"
	      "'except':['198.18.1.0/24','198.18.2.0/24']}}]}]}"),
	NP_OK("{'podSelector':{},'egress':[{'to':[{'ipBlock':{'cidr':'fd00::/"
	      "64'}}],'ports':[{'port':"
	      "30000,'endPort':32767,'protocol':'UDP'},{'port':'dns'},{'protocol':'SCTP'}]}],"
	      "'policyTypes':['Egress']}"),
	NP_OK("{'podSelector':{'matchExpressions':[{'key':'a','operator':'Exists'},"
	      "{'key':'b','operator':'DoesNotExist'},{'key':'c','operator':'NotIn','values':['x']}]"
	      "},"
	      "'policyTypes':['Ingress','Egress'],'ingress':[{}],'egress':[{}]}"),
	NP_OK("{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':'198.18.0.5/16'}}]}]}"),
	NPC("{}", "spec.podSelector", REQ, NULL),
	{"NetworkPolicy", true, "{'metadata':{'name':'deny','namespace':'default'}}", NULL,
	 "spec.podSelector", REQ, NULL},
	NPC("{'podSelector':'all'}", "spec.podSelector", INV, "must be an object"),
	NPC("{'podSelector':{'matchExpressions':[{'key':'a','operator':'Foo'}]}}",
	    "spec.podSelector.matchExpressions[0].operator", INV,
	    "Invalid value: \"Foo\": not a valid selector operator"),
	NPC("{'podSelector':{'matchExpressions':[{'key':'a','operator':'In'}]}}",
	    "spec.podSelector.matchExpressions[0].values", REQ,
	    "must be specified when `operator` is 'In' or 'NotIn'"),
	NPC("{'podSelector':{'matchExpressions':[{'key':'a','operator':'Exists','values':['x']}]}}",
	    "spec.podSelector.matchExpressions[0].values", FORB,
	    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
	NPC("{'podSelector':{'matchExpressions':[{'key':'a b','operator':'Exists'}]}}",
	    "spec.podSelector.matchExpressions[0].key", INV, NULL),
	NPC("{'podSelector':{'matchExpressions':[{'key':'a','operator':'In','values':['b c']}]}}",
	    "spec.podSelector.matchExpressions[0].values[0]", INV, NULL),
	NPC("{'podSelector':{'matchLabels':{'a b':'c'}}}", "spec.podSelector.matchLabels", INV,
	    NULL),
	NPC("{'podSelector':{},'policyTypes':['Foo']}", "spec.policyTypes[0]", NSUP,
	    "Unsupported value: \"Foo\": supported values: \"Ingress\", \"Egress\""),
	NPC("{'podSelector':{},'policyTypes':['Ingress','Ingress']}", "spec.policyTypes[1]", DUP,
	    NULL),
	NPC("{'podSelector':{},'policyTypes':['Ingress','Egress','Ingress']}", "spec.policyTypes",
	    INV, "may not specify more than two policyTypes"),
	NPC("{'podSelector':{},'ingress':[{'from':[{}]}]}", "spec.ingress[0].from[0]", REQ,
	    "Required value: must specify a peer"),
	NPC("{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':'198.18.0.0/16'},"
	    "'podSelector':{}}]}]}",
	    "spec.ingress[0].from[0]", FORB, "may not specify both ipBlock and another peer"),
	NPC("{'podSelector':{},'egress':[{'to':[{'ipBlock':{'cidr':'198.18.0.0/16'},"
	    "'namespaceSelector':{}}]}]}",
	    "spec.egress[0].to[0]", FORB, NULL),
	NPC("{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':'198.18.0.0/40'}}]}]}",
	    "spec.ingress[0].from[0].ipBlock.cidr", INV, CIDR_MSG),
	NPC("{'podSelector':{},'ingress':[{'from':[{'ipBlock':{}}]}]}",
	    "spec.ingress[0].from[0].ipBlock.cidr", REQ, NULL),
	NPC("{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':'198.18.0.0/16',"
	    "'except':['10.0.0.0/24']}}]}]}",
	    "spec.ingress[0].from[0].ipBlock.except[0]", INV,
	    "Invalid value: \"10.0.0.0/24\": must be a strict subset of `cidr`"),
	NPC("{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':'198.18.0.0/16',"
	    "'except':['198.18.3.0/24','198.18.0.0/16']}}]}]}",
	    "spec.ingress[0].from[0].ipBlock.except[1]", INV, "strict subset"),
	NPC("{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':'198.18.0.0/16',"
	    "'except':['198.0.0.0/8']}}]}]}",
	    "spec.ingress[0].from[0].ipBlock.except[0]", INV, "strict subset"),
	NPC("{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':'198.18.0.0/16',"
	    "'except':['fd00::/64']}}]}]}",
	    "spec.ingress[0].from[0].ipBlock.except[0]", INV, "strict subset"),
	NPC("{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':'198.18.0.0/16',"
	    "'except':['nope']}}]}]}",
	    "spec.ingress[0].from[0].ipBlock.except[0]", INV, CIDR_MSG),
	NPC("{'podSelector':{},'ingress':[{'ports':[{'port':0}]}]}",
	    "spec.ingress[0].ports[0].port", INV, PORT_RANGE),
	NPC("{'podSelector':{},'egress':[{'ports':[{'port':100,'endPort':50}]}]}",
	    "spec.egress[0].ports[0].endPort", INV, "must be greater than or equal to `port`"),
	NPC("{'podSelector':{},'egress':[{'ports':[{'port':100,'endPort':70000}]}]}",
	    "spec.egress[0].ports[0].endPort", INV, PORT_RANGE),
	NPC("{'podSelector':{},'egress':[{'ports':[{'port':'dns','endPort':60}]}]}",
	    "spec.egress[0].ports[0].endPort", INV,
	    "may not be specified when `port` is non-numeric"),
	NPC("{'podSelector':{},'egress':[{'ports':[{'endPort':60}]}]}",
	    "spec.egress[0].ports[0].endPort", INV,
	    "may not be specified when `port` is not specified"),
	NPC("{'podSelector':{},'egress':[{'ports':[{'port':53,'protocol':'ICMP'}]}]}",
	    "spec.egress[0].ports[0].protocol", NSUP,
	    "supported values: \"TCP\", \"UDP\", \"SCTP\""),
	NPC("{'podSelector':{},'egress':[{'ports':[{'port':'Http'}]}]}",
	    "spec.egress[0].ports[0].port", INV, NULL),
	NPC("{'podSelector':{},'egress':[{'ports':[{'port':[53]}]}]}",
	    "spec.egress[0].ports[0].port", INV, "must be an integer or a string"),
	NPC("{'podSelector':{},'egress':[{'to':[{'namespaceSelector':{'matchLabels':{'k':'-'}}}]}]"
	    "}",
	    "spec.egress[0].to[0].namespaceSelector.matchLabels", INV, NULL),
	NPC("{'podSelector':{},'ingress':{}}", "spec.ingress", INV, "must be a list"),
};

static const struct vcase misc_cases[] = {
	{"Namespace", false, "{'metadata':{'name':'team-a'}}", NULL, NULL, NULL, NULL},
	{"Namespace", false, "{'metadata':{'name':'123'}}", NULL, NULL, NULL, NULL},
	{"Namespace", false, "{'metadata':{'name':'team.a'}}", NULL, "metadata.name", INV,
	 "a lowercase RFC 1123 label must consist of"},
	{"Namespace", false, "{'metadata':{'name':'Team'}}", NULL, "metadata.name", INV, NULL},
	{"Namespace", false, "{'metadata':{'generateName':'ns-'}}", NULL, "metadata.name", REQ,
	 NULL},
	{"Event", true,
	 "{'metadata':{'name':'web.1','namespace':'default'},'involvedObject':{'kind':'Pod',"
	 "'name':'web','namespace':'default'},'reason':'Started'}",
	 NULL, NULL, NULL, NULL},
	{"Event", true,
	 "{'metadata':{'name':'n.1','namespace':'default'},'involvedObject':{'kind':'Node',"
	 "'name':'n1'}}",
	 NULL, NULL, NULL, NULL},
	{"Event", true, "{'metadata':{'name':'e','namespace':'default'},'reason':'x'}", NULL,
	 "involvedObject", REQ, NULL},
	{"Event", true,
	 "{'metadata':{'name':'e','namespace':'default'},'involvedObject':{'kind':'Pod','name':'p',"
	 "'namespace':'other'}}",
	 NULL, "involvedObject.namespace", INV, "does not match event.namespace"},
	{"Event", true,
	 "{'metadata':{'name':'e','namespace':'kube-system'},'involvedObject':{'kind':'Node','name'"
	 ":'n'}}",
	 NULL, "involvedObject.namespace", INV, NULL},
	{"Lease", true,
	 "{'metadata':{'name':'sluice-leader','namespace':'kube-system'},'spec':{'holderIdentity':'"
	 "a',"
	 "'leaseDurationSeconds':15,'leaseTransitions':0}}",
	 NULL, NULL, NULL, NULL},
	{"Lease", true, "{'metadata':{'name':'l','namespace':'d'},'spec':{}}", NULL, NULL, NULL,
	 NULL},
	{"Lease", true,
	 "{'metadata':{'name':'l','namespace':'d'},'spec':{'leaseDurationSeconds':0}}", NULL,
	 "spec.leaseDurationSeconds", INV, "Invalid value: 0: must be greater than 0"},
	{"Lease", true, "{'metadata':{'name':'l','namespace':'d'},'spec':{'leaseTransitions':-1}}",
	 NULL, "spec.leaseTransitions", INV, "must be greater than or equal to 0"},
	{"Lease", true, "{'metadata':{'name':'l','namespace':'d'},'spec':{'holderIdentity':7}}",
	 NULL, "spec.holderIdentity", INV, "must be a string"},
	{"ConfigMap", true,
	 "{'metadata':{'name':'c','namespace':'d'},'data':{'a.conf':'x','KEY_NAME':'','key-name':'"
	 "y'},"
	 "'binaryData':{'blob.bin':'AAEC'}}",
	 NULL, NULL, NULL, NULL},
	{"ConfigMap", true, "{'metadata':{'name':'c','namespace':'d'},'data':{'bad key':'x'}}",
	 NULL, "data[bad key]", INV,
	 "Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, "
	 "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
	 "validation is '[-._a-zA-Z0-9]+')"},
	{"ConfigMap", true, "{'metadata':{'name':'c','namespace':'d'},'data':{'..x':'x'}}", NULL,
	 "data[..x]", INV, "must not start with '..'"},
	{"ConfigMap", true, "{'metadata':{'name':'c','namespace':'d'},'data':{'.':'x'}}", NULL,
	 "data[.]", INV, "must not be '.'"},
	{"ConfigMap", true, "{'metadata':{'name':'c','namespace':'d'},'data':{'':'x'}}", NULL,
	 "data[]", INV, "a valid config key"},
	{"ConfigMap", true, "{'metadata':{'name':'c','namespace':'d'},'data':{'k':1}}", NULL,
	 "data[k]", INV, "must be a string"},
	{"ConfigMap", true,
	 "{'metadata':{'name':'c','namespace':'d'},'data':{'k':'x'},'binaryData':{'k':'AAEC'}}",
	 NULL, "data[k]", INV, "duplicate of key present in binaryData"},
	{"ConfigMap", true, "{'metadata':{'name':'c','namespace':'d'},'binaryData':{'k':'!!'}}",
	 NULL, "binaryData[k]", INV, "must be base64-encoded"},
};

TEST(node_validation)
{
	RUN(node_cases);
}

TEST(networkpolicy_validation)
{
	RUN(netpol_cases);
}

TEST(namespace_event_lease_configmap_validation)
{
	RUN(misc_cases);
}

TEST(configmap_size_limit)
{
	size_t mib = 1024 * 1024;
	char *val = malloc(mib + 1);
	struct json_object *obj = jq("{'metadata':{'name':'c','namespace':'d'},'data':{}}");
	struct json_object *data = sl_json_get(obj, "data");
	struct api_causes c = {0};

	if (!ASSERT_NOT_NULL(val, "malloc") || !ASSERT_NOT_NULL(data, "parse"))
		goto out;
	memset(val, 'x', mib);
	val[mib] = '\0';
	json_object_object_add(data, "a", json_object_new_string(val));
	ASSERT_EQ(validate_object("ConfigMap", true, obj, NULL, &c), 0, "1 MiB is allowed");
	api_causes_fini(&c);
	json_object_object_add(data, "b", json_object_new_string("y"));
	validate_object("ConfigMap", true, obj, NULL, &c);
	ASSERT_NOT_NULL(
		find_cause(&c, "", CAUSE_TOO_LONG, "Too long: may not be more than 1048576 bytes"),
		"over 1 MiB");
out:
	api_causes_fini(&c);
	json_object_put(obj);
	free(val);
}

/* Several findings in one object are all reported, each with its own path. */
TEST(reports_every_problem)
{
	struct json_object *obj = jq("{'metadata':{'name':'Bad'},'spec':{'type':'Foo','ports':["
				     "{'port':0,'protocol':'ICMP'},{'port':80}]}}");
	struct api_causes c = {0};
	int n;

	if (!ASSERT_NOT_NULL(obj, "parse"))
		return;
	ASSERT_OK(default_object("Service", obj, NULL), "default");
	n = validate_object("Service", true, obj, NULL, &c);
	ASSERT_TRUE(n >= 6, "at least six causes");
	ASSERT_NOT_NULL(find_cause(&c, "metadata.name", INV, NULL), "name");
	ASSERT_NOT_NULL(find_cause(&c, "metadata.namespace", REQ, NULL), "namespace");
	ASSERT_NOT_NULL(find_cause(&c, "spec.type", NSUP, NULL), "type");
	ASSERT_NOT_NULL(find_cause(&c, "spec.ports[0].port", INV, NULL), "port");
	ASSERT_NOT_NULL(find_cause(&c, "spec.ports[0].protocol", NSUP, NULL), "protocol");
	ASSERT_NOT_NULL(find_cause(&c, "spec.ports[0].name", REQ, NULL), "name 0");
	ASSERT_NOT_NULL(find_cause(&c, "spec.ports[1].name", REQ, NULL), "name 1");
	/* the causes are appended to what is already there */
	n = validate_object("Service", true, obj, NULL, &c);
	ASSERT_EQ(c.n, 2 * (size_t)n, "appends");
	api_causes_fini(&c);
	json_object_put(obj);
}

TEST(non_objects_do_not_crash)
{
	static const char *const kinds[] = {
		"Service",   "Pod",   "EndpointSlice", "Endpoints", "Node",    "NetworkPolicy",
		"Namespace", "Event", "Lease",	       "ConfigMap", "Unknown", NULL};
	static const char *const docs[] = {
		"[]",
		"5",
		"'s'",
		"{'metadata':[],'spec':'x'}",
		"{'metadata':{'name':{}},'spec':{'ports':[null,1,'x',[]],'containers':[null],"
		"'podSelector':{'matchExpressions':[null,{'values':[null,3]}]},'ingress':[null,{'"
		"from':"
		"[null,{'ipBlock':{'cidr':5,'except':[1]}}],'ports':[null,{}]}],'taints':[null],"
		"'tolerations':[5]},'endpoints':[null,{'addresses':[null,5]}],'ports':[null],"
		"'subsets':[null,{'addresses':[null]}],'data':{'k':null},'addressType':'IPv4'}",
	};

	for (size_t k = 0; kinds[k]; k++) {
		for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
			struct json_object *obj = jq(docs[d]), *copy;
			struct api_causes c = {0};

			copy = obj ? sl_json_clone(obj) : NULL;
			ASSERT_OK(default_object(kinds[k], obj, NULL), "default");
			ASSERT_OK(default_object(kinds[k], copy, obj), "default update");
			ASSERT_TRUE(validate_object(kinds[k], true, obj, NULL, &c) > 0, kinds[k]);
			validate_object(kinds[k], true, copy, obj, &c);
			api_causes_fini(&c);
			json_object_put(obj);
			json_object_put(copy);
		}
	}
	ASSERT_OK(default_object(NULL, NULL, NULL), "NULL kind");
}

/* --- defaulting ------------------------------------------------------------------------- */

struct dcase {
	const char *kind;
	const char *in, *old, *want;
};

static void run_defaults(const char *table, const struct dcase *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct json_object *in = jq(cases[i].in), *want = jq(cases[i].want);
		struct json_object *old = cases[i].old ? jq(cases[i].old) : NULL;
		struct json_object *again = NULL;
		struct api_causes c = {0};
		char name[64];

		snprintf(name, sizeof(name), "%s[%zu]", table, i);
		if (!ASSERT_NOT_NULL(in, name) || !ASSERT_NOT_NULL(want, name))
			goto next;
		if (!ASSERT_OK(default_object(cases[i].kind, in, old), name))
			goto next;
		if (!ASSERT_TRUE(sl_json_equal(in, want), name)) {
			fprintf(stderr, "    got:  %s\n", sl_json_str(in, NULL));
			fprintf(stderr, "    want: %s\n", sl_json_str(want, NULL));
		}
		/* defaulting is idempotent and its output validates */
		again = sl_json_clone(in);
		ASSERT_OK(default_object(cases[i].kind, again, old), name);
		ASSERT_TRUE(sl_json_equal(in, again), "idempotent");
		if (!ASSERT_EQ(validate_object(cases[i].kind,
					       strcmp(cases[i].kind, "Namespace") != 0, in, old,
					       &c),
			       0, name))
			dump_causes(&c);
	next:
		api_causes_fini(&c);
		json_object_put(in);
		json_object_put(want);
		json_object_put(old);
		json_object_put(again);
	}
}

#define RUN_D(table) run_defaults(#table, table, sizeof(table) / sizeof((table)[0]))
#define SVC_D(spec)  "{'metadata':{'name':'web','namespace':'default'},'spec':" spec "}"
#define SVC_TAIL                                                                             \
	"'sessionAffinity':'None','internalTrafficPolicy':'Cluster','ipFamilies':['IPv4'],'" \
	"ipFamilyPolicy':'SingleStack'"

static const struct dcase service_defaults[] = {
	{"Service", SVC_D("{'ports':[{'port':80}],'selector':{'app':'web'}}"), NULL,
	 SVC_D("{'type':'ClusterIP','ports':[{'port':80,'protocol':'TCP','targetPort':80}],"
	       "'selector':{'app':'web'}," SVC_TAIL "}")},
	{"Service",
	 SVC_D("{'ports':[{'name':'a','port':80,'targetPort':0},{'name':'b','port':81,"
	       "'targetPort':'','protocol':'UDP'},{'name':'c','port':82,'targetPort':'http'}]}"),
	 NULL,
	 SVC_D("{'type':'ClusterIP','ports':[{'name':'a','port':80,'protocol':'TCP','targetPort':"
	       "80},"
	       "{'name':'b','port':81,'protocol':'UDP','targetPort':81},{'name':'c','port':82,"
	       "'protocol':'TCP','targetPort':'http'}]," SVC_TAIL "}")},
	{"Service", SVC_D("{'type':'NodePort','ports':[{'port':80}]}"), NULL,
	 SVC_D("{'type':'NodePort','ports':[{'port':80,'protocol':'TCP','targetPort':80}],"
	       "'externalTrafficPolicy':'Cluster'," SVC_TAIL "}")},
	{"Service", SVC_D("{'type':'LoadBalancer','ports':[{'port':80}]}"), NULL,
	 SVC_D("{'type':'LoadBalancer','ports':[{'port':80,'protocol':'TCP','targetPort':80}],"
	       "'externalTrafficPolicy':'Cluster','allocateLoadBalancerNodePorts':true," SVC_TAIL
	       "}")},
	{"Service", SVC_D("{'externalIPs':['198.18.9.9'],'ports':[{'port':80}]}"), NULL,
	 SVC_D("{'type':'ClusterIP','externalIPs':['198.18.9.9'],'ports':[{'port':80,'protocol':"
	       "'TCP','targetPort':80}],'externalTrafficPolicy':'Cluster'," SVC_TAIL "}")},
	{"Service", SVC_D("{'sessionAffinity':'ClientIP','ports':[{'port':80}]}"), NULL,
	 SVC_D("{'type':'ClusterIP','ports':[{'port':80,'protocol':'TCP','targetPort':80}],"
	       "'sessionAffinity':'ClientIP','sessionAffinityConfig':{'clientIP':{'timeoutSeconds':"
	       "10800}},'internalTrafficPolicy':'Cluster','ipFamilies':['IPv4'],'ipFamilyPolicy':"
	       "'SingleStack'}")},
	{"Service",
	 SVC_D("{'sessionAffinity':'ClientIP','sessionAffinityConfig':{'clientIP':"
	       "{'timeoutSeconds':60}},'ports':[{'port':80}]}"),
	 NULL,
	 SVC_D("{'type':'ClusterIP','ports':[{'port':80,'protocol':'TCP','targetPort':80}],"
	       "'sessionAffinity':'ClientIP','sessionAffinityConfig':{'clientIP':{'timeoutSeconds':"
	       "60}},'internalTrafficPolicy':'Cluster','ipFamilies':['IPv4'],'ipFamilyPolicy':"
	       "'SingleStack'}")},
	{"Service", SVC_D("{'type':'ExternalName','externalName':'db.example.com'}"), NULL,
	 SVC_D("{'type':'ExternalName','externalName':'db.example.com','sessionAffinity':'None'}")},
	{"Service", SVC_D("{'clusterIP':'198.18.0.10','ports':[{'port':80}]}"), NULL,
	 SVC_D("{'type':'ClusterIP','clusterIP':'198.18.0.10','clusterIPs':['198.18.0.10'],"
	       "'ports':[{'port':80,'protocol':'TCP','targetPort':80}]," SVC_TAIL "}")},
	{"Service", SVC_D("{'clusterIP':'None','ports':[{'port':80}]}"), NULL,
	 SVC_D("{'type':'ClusterIP','clusterIP':'None','clusterIPs':['None'],"
	       "'ports':[{'port':80,'protocol':'TCP','targetPort':80}]," SVC_TAIL "}")},
};

/* Updates: allocated values survive a PUT that omits them; fields tied to
 * the old type are dropped when unchanged. */
static const struct dcase service_update_defaults[] = {
	{"Service",
	 SVC_D("{'type':'NodePort','ports':[{'name':'http','port':80},{'name':'new',"
	       "'port':81}]}"),
	 SVC_D("{'type':'NodePort','clusterIP':'198.18.0.10','clusterIPs':['198.18.0.10'],"
	       "'ports':[{'name':'http','port':80,'protocol':'TCP','targetPort':80,'nodePort':"
	       "30080}],'externalTrafficPolicy':'Cluster'," SVC_TAIL "}"),
	 SVC_D("{'type':'NodePort','clusterIP':'198.18.0.10','clusterIPs':['198.18.0.10'],"
	       "'ports':[{'name':'http','port':80,'protocol':'TCP','targetPort':80,'nodePort':"
	       "30080},{'name':'new','port':81,'protocol':'TCP','targetPort':81}],"
	       "'externalTrafficPolicy':'Cluster'," SVC_TAIL "}")},
	{"Service",
	 SVC_D("{'type':'ExternalName','externalName':'x.example.com','clusterIP':'198.18.0.10',"
	       "'clusterIPs':['198.18.0.10'],'ipFamilies':['IPv4'],'ipFamilyPolicy':'SingleStack',"
	       "'internalTrafficPolicy':'Cluster','sessionAffinity':'None'}"),
	 SVC_D("{'type':'ClusterIP','clusterIP':'198.18.0.10','clusterIPs':['198.18.0.10'],"
	       "'ports':[{'port':80,'protocol':'TCP','targetPort':80}]," SVC_TAIL "}"),
	 SVC_D("{'type':'ExternalName','externalName':'x.example.com','sessionAffinity':'None'}")},
	{"Service",
	 SVC_D("{'type':'ClusterIP','clusterIP':'198.18.0.10','externalTrafficPolicy':'Cluster',"
	       "'ports':[{'port':80,'nodePort':30080}]}"),
	 SVC_D("{'type':'NodePort','clusterIP':'198.18.0.10','clusterIPs':['198.18.0.10'],"
	       "'ports':[{'port':80,'protocol':'TCP','targetPort':80,'nodePort':30080}],"
	       "'externalTrafficPolicy':'Cluster'," SVC_TAIL "}"),
	 SVC_D("{'type':'ClusterIP','clusterIP':'198.18.0.10','clusterIPs':['198.18.0.10'],"
	       "'ports':[{'port':80,'protocol':'TCP','targetPort':80}]," SVC_TAIL "}")},
	{"Service", SVC_D("{'type':'ClusterIP','ports':[{'port':80}]}"),
	 SVC_D("{'type':'LoadBalancer','clusterIP':'198.18.0.10','clusterIPs':['198.18.0.10'],"
	       "'ports':[{'port':80,'protocol':'TCP','targetPort':80,'nodePort':30080}],"
	       "'externalTrafficPolicy':'Local','healthCheckNodePort':31000,"
	       "'allocateLoadBalancerNodePorts':true," SVC_TAIL "}"),
	 SVC_D("{'type':'ClusterIP','clusterIP':'198.18.0.10','clusterIPs':['198.18.0.10'],"
	       "'ports':[{'port':80,'protocol':'TCP','targetPort':80}]," SVC_TAIL "}")},
};

#define POD_D(spec, status) "{'metadata':{'name':'p','namespace':'default'},'spec':" spec status "}"
#define POD_SPEC_TAIL                                                                       \
	"'restartPolicy':'Always','dnsPolicy':'ClusterFirst','schedulerName':"              \
	"'default-scheduler','terminationGracePeriodSeconds':30,'enableServiceLinks':true," \
	"'securityContext':{}"
#define CTR_TAIL "'terminationMessagePath':'/dev/termination-log','terminationMessagePolicy':'File'"

static const struct dcase pod_defaults[] = {
	{"Pod", POD_D("{'containers':[{'name':'a','image':'nginx'}]}", ""), NULL,
	 POD_D("{'containers':[{'name':'a','image':'nginx','imagePullPolicy':'Always'," CTR_TAIL
	       "}]," POD_SPEC_TAIL "}",
	       ",'status':{'phase':'Pending'}")},
	{"Pod",
	 POD_D("{'containers':[{'name':'a','image':'nginx:1.25','ports':[{'containerPort':80}]},"
	       "{'name':'b','image':'reg.local:5000/x/y'},{'name':'c','image':'nginx:latest'},"
	       "{'name':'d','image':'nginx@sha256:abcd'},{'name':'e','image':'reg:5000/nginx:2',"
	       "'imagePullPolicy':'Never'}],'initContainers':[{'name':'i','image':'busybox:1'}],"
	       "'restartPolicy':'Never','dnsPolicy':'None','terminationGracePeriodSeconds':5}",
	       ",'status':{'phase':'Running'}"),
	 NULL,
	 POD_D("{'containers':[{'name':'a','image':'nginx:1.25','imagePullPolicy':'IfNotPresent',"
	       "'ports':[{'containerPort':80,'protocol':'TCP'}]," CTR_TAIL "},"
	       "{'name':'b','image':'reg.local:5000/x/y','imagePullPolicy':'Always'," CTR_TAIL "},"
	       "{'name':'c','image':'nginx:latest','imagePullPolicy':'Always'," CTR_TAIL "},"
	       "{'name':'d','image':'nginx@sha256:abcd','imagePullPolicy':'IfNotPresent'," CTR_TAIL
	       "},"
	       "{'name':'e','image':'reg:5000/nginx:2','imagePullPolicy':'Never'," CTR_TAIL "}],"
	       "'initContainers':[{'name':'i','image':'busybox:1','imagePullPolicy':'IfNotPresent'"
	       "," CTR_TAIL
	       "}],'restartPolicy':'Never','dnsPolicy':'None','terminationGracePeriodSeconds':5,"
	       "'schedulerName':'default-scheduler','enableServiceLinks':true,'securityContext':{}"
	       "}",
	       ",'status':{'phase':'Running'}")},
	{"Pod",
	 POD_D("{'hostNetwork':true,'containers':[{'name':'a','image':'x:1','ports':[{'"
	       "containerPort':"
	       "53,'protocol':'UDP'}]}]}",
	       ""),
	 NULL,
	 POD_D("{'hostNetwork':true,'containers':[{'name':'a','image':'x:1','imagePullPolicy':"
	       "'IfNotPresent','ports':[{'containerPort':53,'protocol':'UDP','hostPort':53}]"
	       "," CTR_TAIL "}]," POD_SPEC_TAIL "}",
	       ",'status':{'phase':'Pending'}")},
	/* on update, status is not invented */
	{"Pod", POD_D("{'containers':[{'name':'a','image':'nginx'}]}", ""),
	 POD_D("{'containers':[{'name':'a','image':'nginx','imagePullPolicy':'Always'," CTR_TAIL
	       "}]," POD_SPEC_TAIL "}",
	       ",'status':{'phase':'Running'}"),
	 POD_D("{'containers':[{'name':'a','image':'nginx','imagePullPolicy':'Always'," CTR_TAIL
	       "}]," POD_SPEC_TAIL "}",
	       "")},
};

static const struct dcase misc_defaults[] = {
	{"Namespace", "{'metadata':{'name':'team-a'}}", NULL,
	 "{'metadata':{'name':'team-a','labels':{'kubernetes.io/metadata.name':'team-a'}},"
	 "'status':{'phase':'Active'}}"},
	{"Namespace",
	 "{'metadata':{'name':'team-a','labels':{'kubernetes.io/metadata.name':'other','x':'y'}},"
	 "'status':{'phase':'Terminating'}}",
	 NULL,
	 "{'metadata':{'name':'team-a','labels':{'kubernetes.io/metadata.name':'team-a','x':'y'}},"
	 "'status':{'phase':'Terminating'}}"},
	{"NetworkPolicy", NP("{'podSelector':{}}"), NULL,
	 NP("{'podSelector':{},'policyTypes':['Ingress']}")},
	{"NetworkPolicy",
	 NP("{'podSelector':{},'ingress':[{'ports':[{'port':80}]}],'egress':[{'ports':[{'port':53,"
	    "'protocol':'UDP'},{}]}]}"),
	 NULL,
	 NP("{'podSelector':{},'ingress':[{'ports':[{'port':80,'protocol':'TCP'}]}],'egress':[{'"
	    "ports':"
	    "[{'port':53,'protocol':'UDP'},{'protocol':'TCP'}]}],'policyTypes':['Ingress','Egress']"
	    "}")},
	{"NetworkPolicy", NP("{'podSelector':{},'egress':[{}],'policyTypes':['Egress']}"), NULL,
	 NP("{'podSelector':{},'egress':[{}],'policyTypes':['Egress']}")},
	{"NetworkPolicy", NP("{'podSelector':{},'egress':[]}"), NULL,
	 NP("{'podSelector':{},'egress':[],'policyTypes':['Ingress']}")},
	{"EndpointSlice",
	 ES("'addressType':'IPv4','ports':[{'port':80},{'name':'x','port':81,'protocol':'UDP'}]"),
	 NULL,
	 ES("'addressType':'IPv4','ports':[{'port':80,'protocol':'TCP','name':''},{'name':'x',"
	    "'port':81,'protocol':'UDP'}]")},
	{"Endpoints", EP("[{'addresses':[{'ip':'198.18.0.1'}],'ports':[{'port':80}]}]"), NULL,
	 EP("[{'addresses':[{'ip':'198.18.0.1'}],'ports':[{'port':80,'protocol':'TCP'}]}]")},
	{"ConfigMap", "{'metadata':{'name':'c','namespace':'d'},'data':{'a':'b'}}", NULL,
	 "{'metadata':{'name':'c','namespace':'d'},'data':{'a':'b'}}"},
};

TEST(service_defaults_table)
{
	RUN_D(service_defaults);
}

TEST(service_update_defaults_table)
{
	RUN_D(service_update_defaults);
}

TEST(pod_defaults_table)
{
	RUN_D(pod_defaults);
}

TEST(other_defaults_table)
{
	RUN_D(misc_defaults);
}
