/* preconn: URL host parsing for numeric addresses, and the early, possibly corked, connect. */
#include "preconn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Split "scheme://[user@]host[:port]/..." into host (brackets kept off) and port. */
static bool preconn_split(const char *url, char *host, size_t cap, unsigned *port)
{
    if (strncasecmp(url, "http://", 7) == 0)
        *port = 80, url += 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        *port = 443, url += 8;
    else
        return false;
    size_t alen = strcspn(url, "/?#");
    const char *at = memchr(url, '@', alen);
    const char *h = at ? at + 1 : url, *end = url + alen;
    const char *colon = NULL;
    if (*h == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));
        if (!close)
            return false;
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
        h++, end = close;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        end = colon ? colon : end;
    }
    if ((size_t)(end - h) >= cap || end == h)
        return false;
    memcpy(host, h, (size_t)(end - h));
    host[end - h] = '\0';
    if (colon) {
        char *stop = NULL;
        unsigned long p = strtoul(colon + 1, &stop, 10);
        if (stop == colon + 1 || p == 0 || p > 65535)
            return false;
        *port = (unsigned)p;
    }
    return true;
}

bool preconn_addr(const char *url, struct sockaddr_storage *out)
{
    char host[64];
    unsigned port = 0;
    memset(out, 0, sizeof *out);
    if (!preconn_split(url, host, sizeof host, &port))
        return false;
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return true;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        return true;
    }
    return false;
}

int preconn_open(const struct sockaddr_storage *a, bool cork, bool *corked)
{
    *corked = false;
    int fd = socket(a->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *corked = cork && setsockopt(fd, IPPROTO_TCP, TCP_CORK, &one, sizeof one) == 0;
    /* A corked socket closed with data in it sends that data: a worker killed while holding a
     * request would fire the job at its death, after which the broker hands it to another
     * worker and it runs twice. Closed with a reset instead, a held request dies unsent. */
    if (*corked)
        preconn_reset_on_close(fd);
    socklen_t len =
        a->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (connect(fd, (const struct sockaddr *)a, len) != 0 && errno != EINPROGRESS) {
        close(fd); /* refused at once: the normal path will meet (and report) the same */
        return -1;
    }
    return fd;
}

bool preconn_same(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    if (a->ss_family != b->sa_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
}

bool preconn_reset_on_close(int fd)
{
    struct linger drop = {1, 0};
    return setsockopt(fd, SOL_SOCKET, SO_LINGER, &drop, sizeof drop) == 0;
}

void preconn_uncork(int fd)
{
    int zero = 0;
    setsockopt(fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof zero);
}
