/* netguard: the HTTP target allow-list and the refused-address policy. */
#include "netguard.h"

#include "err.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct netguard_entry {
    char name[NETGUARD_NAME_MAX]; /* normalised; starts with '.' for a suffix entry */
    unsigned port;                /* 0 = any */
} netguard_entry;

struct netguard {
    netguard_entry *e;
    size_t n;
    bool allow_link_local;
};

/* Only these characters make an inet_aton spelling; glibc's inet_aton would otherwise accept
 * "1.2.3.4 anything" (it stops at white space). */
static bool netguard_v4_chars(const char *s)
{
    return s[0] && strspn(s, "0123456789abcdefABCDEFxX.") == strlen(s);
}

bool netguard_literal(const char *host, struct sockaddr_storage *out)
{
    char h[NETGUARD_NAME_MAX];
    size_t len = strlen(host);
    if (host[0] == '[' && len >= 2 && host[len - 1] == ']')
        host++, len -= 2;
    if (len >= sizeof h)
        return false;
    memcpy(h, host, len);
    h[len] = '\0';
    if (len > 1 && h[len - 1] == '.') /* "169.254.169.254." resolves like the literal */
        h[len - 1] = '\0';
    memset(out, 0, sizeof *out);
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (netguard_v4_chars(h) && inet_aton(h, &v4->sin_addr)) {
        v4->sin_family = AF_INET;
        return true;
    }
    if (strchr(h, ':') && inet_pton(AF_INET6, h, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        return true;
    }
    return false;
}

bool netguard_norm(const char *host, char *out, size_t cap)
{
    struct sockaddr_storage a;
    if (netguard_literal(host, &a)) {
        const void *p = a.ss_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)&a)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)&a)->sin6_addr;
        return inet_ntop(a.ss_family, p, out, (socklen_t)cap) != NULL;
    }
    size_t len = strlen(host);
    if (len && host[len - 1] == '.')
        len--;
    if (len >= cap)
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)host[i]);
    out[len] = '\0';
    return true;
}

/* One entry "host", "host:port", "[v6]", "[v6]:port", ".suffix[:port]", or a bare IPv6. */
static bool netguard_entry_parse(const char *s, netguard_entry *e)
{
    char host[NETGUARD_NAME_MAX];
    const char *colon = strrchr(s, ':');
    const char *close = strchr(s, ']');
    bool bare_v6 = colon && strchr(s, ':') != colon && s[0] != '[';
    size_t hlen = strlen(s);
    e->port = 0;
    if (colon && !bare_v6 && (!close || colon > close)) {
        char *end = NULL;
        unsigned long p = strtoul(colon + 1, &end, 10);
        if (!colon[1] || *end || p == 0 || p > 65535)
            return false;
        e->port = (unsigned)p;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= sizeof host)
        return false;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    if (strpbrk(host, "/@?# \t") || (host[0] == '.' && !host[1]))
        return false;
    return netguard_norm(host, e->name, sizeof e->name) && e->name[0];
}

/* Trim spaces around one comma-separated piece in place. */
static char *netguard_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

int netguard_new(const char *allow_hosts, bool allow_link_local, netguard **out, char *err,
                 size_t cap)
{
    netguard *g = calloc(1, sizeof *g);
    char *buf = strdup(allow_hosts ? allow_hosts : "");
    int rc = ERR_NOMEM;
    if (!g || !buf)
        goto fail;
    g->allow_link_local = allow_link_local;
    g->e = calloc(NETGUARD_HOSTS_MAX, sizeof *g->e);
    if (!g->e)
        goto fail;
    rc = ERR_INVAL;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        t = netguard_trim(t);
        if (!*t)
            continue;
        if (g->n == NETGUARD_HOSTS_MAX) {
            snprintf(err, cap, "more than %d allowed hosts", NETGUARD_HOSTS_MAX);
            goto fail;
        }
        if (!netguard_entry_parse(t, &g->e[g->n])) {
            snprintf(err, cap, "allowed host '%.100s': not host, host:port or .suffix", t);
            goto fail;
        }
        g->n++;
    }
    free(buf);
    *out = g;
    return ERR_OK;
fail:
    free(buf);
    netguard_free(g);
    return rc;
}

void netguard_free(netguard *g)
{
    if (!g)
        return;
    free(g->e);
    free(g);
}

static bool netguard_match(const netguard_entry *e, const char *host, unsigned port)
{
    if (e->port && e->port != port)
        return false;
    if (e->name[0] != '.')
        return strcmp(e->name, host) == 0;
    size_t hl = strlen(host), el = strlen(e->name);
    return hl > el && strcmp(host + hl - el, e->name) == 0;
}

bool netguard_has_hosts(const netguard *g)
{
    return g && g->n > 0;
}

bool netguard_host_ok(const netguard *g, const char *host, unsigned port)
{
    if (!g || g->n == 0)
        return true;
    char h[NETGUARD_NAME_MAX];
    if (!host || !netguard_norm(host, h, sizeof h) || !h[0])
        return false;
    for (size_t i = 0; i < g->n; i++) {
        if (netguard_match(&g->e[i], h, port))
            return true;
    }
    return false;
}

/* The refused IPv4 range, on an address in host byte order: link-local, where the cloud
 * metadata services answer. */
static const char *netguard_v4_refused(uint32_t a)
{
    return (a >> 16) == 0xA9FEu ? "is link-local (cloud metadata)" : NULL;
}

/* IPv6: link-local, AWS's metadata address, and the forms that carry an IPv4 address. */
static const char *netguard_v6_refused(const uint8_t *b)
{
    static const uint8_t ec2[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0,    0,
                                    0,    0,    0,    0,    0, 0, 0x02, 0x54};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t zero[12] = {0};
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return "is link-local";
    if (memcmp(b, ec2, 16) == 0)
        return "is the cloud metadata address";
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0 || memcmp(b, zero, 12) == 0) {
        uint32_t v4 = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
        return netguard_v4_refused(v4);
    }
    return NULL;
}

bool netguard_addr_ok(const netguard *g, const struct sockaddr *a, char *why, size_t cap)
{
    if (g && g->allow_link_local)
        return true;
    const char *r = NULL;
    const void *raw = NULL;
    if (a->sa_family == AF_INET) {
        raw = &((const struct sockaddr_in *)a)->sin_addr;
        r = netguard_v4_refused(ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr));
    } else if (a->sa_family == AF_INET6) {
        raw = &((const struct sockaddr_in6 *)a)->sin6_addr;
        r = netguard_v6_refused(((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr);
    }
    if (!r)
        return true;
    char text[INET6_ADDRSTRLEN] = "?";
    inet_ntop(a->sa_family, raw, text, sizeof text);
    snprintf(why, cap, "address %s %s", text, r);
    return false;
}
