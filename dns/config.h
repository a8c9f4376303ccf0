/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice-dns configuration: a small Corefile-like text file and command-line
 * flags with the same names. One directive per line, words separated by
 * blanks, '#' starts a comment:
 *
 *   zone cluster.local          # the cluster domain answered from memory
 *   ttl 30                      # TTL of cluster records, 0-3600
 *   pods insecure               # insecure | verified | disabled
 *   forward 198.18.5.53:53 ...  # upstreams (up to 15); default /etc/resolv.conf
 *   listen 127.0.0.1:5353       # UDP+TCP listen address
 *   metrics 127.0.0.1:9153      # /metrics /health /ready; "off" disables
 *   workers 4                   # worker threads (0 = one per core)
 *   cache 10000 3600 5          # entries [max TTL [min TTL]]
 *   upstream-timeout 2000       # ms per upstream attempt
 *   max-fails 2                 # failures before an upstream is marked down
 *   tcp-connections 1024        # concurrent TCP clients per server
 *   tcp-idle 10000              # ms a TCP client may stay idle or slow
 *   bufsize 1232                # EDNS UDP payload we answer up to
 *
 * A bad line is an error naming the file, the line number and what is
 * wrong; nothing is applied halfway (the caller keeps the old config on
 * error). Pure functions, no I/O except dns_config_load()/_resolv_conf().
 */
#ifndef SLUICE_DNS_CONFIG_H
#define SLUICE_DNS_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define DNS_CFG_MAX_UPSTREAMS 15

enum dns_cfg_pods {
	DNS_CFG_PODS_INSECURE,
	DNS_CFG_PODS_VERIFIED,
	DNS_CFG_PODS_DISABLED,
};

struct dns_config {
	char zone[256];		/* cluster domain, lower case, no trailing dot */
	unsigned int ttl;	/* seconds, cluster records */
	enum dns_cfg_pods pods; /* pod record mode */
	struct sockaddr_storage upstream[DNS_CFG_MAX_UPSTREAMS]; /* forward targets */
	unsigned int n_upstream;	  /* 0 = take them from resolv.conf */
	struct sockaddr_storage listen;	  /* UDP and TCP */
	char metrics[128];		  /* "host:port", "" = off */
	unsigned int workers;		  /* 0 = one per online CPU */
	unsigned int cache_size;	  /* entries; 0 disables the cache */
	unsigned int cache_max_ttl;	  /* seconds */
	unsigned int cache_min_ttl;	  /* seconds */
	unsigned int upstream_timeout_ms; /* per attempt */
	unsigned int max_fails;		  /* consecutive failures → down */
	unsigned int tcp_max_conns;	  /* per server, all workers together */
	unsigned int tcp_idle_ms;	  /* idle/slow TCP client limit */
	unsigned int bufsize;		  /* EDNS UDP payload ceiling, 512-4096 */
};

void dns_config_defaults(struct dns_config *c);

/*
 * Applies one directive with its arguments (as from a config line or a
 * flag). Returns 0 or -EINVAL with err saying what is wrong and what is
 * accepted ("ttl: '99999' is not a number of seconds 0-3600").
 */
int dns_config_directive(struct dns_config *c, const char *name, char *const *args, int nargs,
			 char *err, size_t errlen);

/*
 * Parses a config text (len bytes, NUL not required) on top of c. On error
 * returns -EINVAL, leaves c unchanged and writes "<path>:<line>: <problem>"
 * into err. path is only used in messages.
 */
int dns_config_parse(struct dns_config *c, const char *path, const char *text, size_t len,
		     char *err, size_t errlen);

/* Reads and parses a file; -ENOENT etc. when unreadable (err says so). */
int dns_config_load(struct dns_config *c, const char *path, char *err, size_t errlen);

/*
 * Fills c->upstream from the nameserver lines of a resolv.conf (when
 * c->n_upstream is 0), skipping our own listen address so the server never
 * forwards to itself. Returns the number of upstreams taken (0 is not an
 * error: forwarding then answers SERVFAIL), or -errno if unreadable.
 */
int dns_config_resolv_conf(struct dns_config *c, const char *path, char *err, size_t errlen);

/* Parses "IP", "IP:PORT", "[IPv6]:PORT" (default port def_port). 0 or -EINVAL. */
int dns_config_addr_parse(const char *s, unsigned int def_port, struct sockaddr_storage *out);

/* Formats an address as "IP:PORT" / "[IPv6]:PORT" into buf. Returns buf. */
const char *dns_config_addr_str(const struct sockaddr_storage *a, char *buf, size_t len);

#endif
