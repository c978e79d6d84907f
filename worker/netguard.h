/* netguard: which HTTP targets a worker may reach.
 *
 * Two checks, both made by httpcall: the host allow-list (--allow-hosts), matched against the
 * host name of the URL as libcurl parsed it, on the job's URL and on every redirect; and the
 * address policy, matched against the address libcurl is about to connect to (after DNS), so a
 * name that resolves to a metadata address is refused as surely as the literal. Refused by
 * default: IPv4 link-local 169.254.0.0/16 (the cloud metadata services at 169.254.169.254),
 * IPv6 link-local fe80::/10 and AWS's fd00:ec2::254, also when spelt as an IPv4-mapped
 * (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) IPv6 address.
 *
 * Allow-list entries, comma-separated, case-insensitive, a trailing dot ignored:
 *   api.example.com        that host, any port
 *   api.example.com:8443   that host, that port only
 *   .example.com           any name under example.com (a.example.com, a.b.example.com), not
 *                          example.com itself: list both to allow both; ".example.com:443" too
 *   10.0.0.5, [2001:db8::1], [2001:db8::1]:8080
 *                          an address literal; IPv4 in any inet_aton spelling (2130706433,
 *                          0x7f.1) is compared in dotted form
 * An empty list allows every host. The list never overrides the address policy. */
#ifndef SALVO_NETGUARD_H
#define SALVO_NETGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define NETGUARD_HOSTS_MAX 256
#define NETGUARD_NAME_MAX  256 /* a DNS name is at most 253 bytes */

typedef struct netguard netguard;

/* Build a guard from the allow-list text (NULL or "" = any host). allow_link_local lifts the
 * address policy (for a target that really lives on a link-local address). ERR_OK, ERR_NOMEM or
 * ERR_INVAL with the bad entry named in err. The caller owns *out (netguard_free). */
int netguard_new(const char *allow_hosts, bool allow_link_local, netguard **out, char *err,
                 size_t cap);
/* Safe on NULL. */
void netguard_free(netguard *g);

/* Whether host (as in a URL: brackets around IPv6 allowed) at port passes the allow-list.
 * A NULL guard allows everything. Thread-safe (the guard is read-only). */
bool netguard_host_ok(const netguard *g, const char *host, unsigned port);

/* Whether g has an allow-list (false for NULL or an empty list). Thread-safe. */
bool netguard_has_hosts(const netguard *g);

/* Whether connecting to a (AF_INET or AF_INET6) is allowed; when not, why gets e.g.
 * "169.254.169.254 is link-local (cloud metadata)". Other families are allowed (libcurl opens
 * only IP sockets here). A NULL guard applies the default policy. Thread-safe. */
bool netguard_addr_ok(const netguard *g, const struct sockaddr *a, char *why, size_t cap);

/* When host is an IP address literal (any inet_aton IPv4 spelling, or IPv6 with or without
 * brackets), fill *out with it (port 0) and return true. Thread-safe. */
bool netguard_literal(const char *host, struct sockaddr_storage *out);

/* host lower-cased, brackets and one trailing dot removed, IPv4 literals in dotted form, IPv6
 * literals in inet_ntop's canonical form. false when it does not fit cap. Thread-safe. */
bool netguard_norm(const char *host, char *out, size_t cap);

#endif
