/* httpreq: one raw-socket HTTP request for the unit tests (see httpreq.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "httpreq.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int httpreq_send(const char *ip, int port, const char *method, const char *path, httpreq_reply *r)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char req[256], buf[sizeof r->head + sizeof r->body];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                     method, path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t len = 0;
    ssize_t got;
    while (len < sizeof buf - 1 && (got = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)got;
    close(fd);
    buf[len] = '\0';
    char *split = strstr(buf, "\r\n\r\n");
    assert_non_null(split);
    size_t hl = (size_t)(split - buf), bl = len - hl - 4;
    assert_true(hl < sizeof r->head && bl < sizeof r->body);
    memcpy(r->head, buf, hl);
    r->head[hl] = '\0';
    memcpy(r->body, split + 4, bl + 1);
    assert_int_equal(sscanf(buf, "HTTP/1.1 %d", &r->status), 1);
    return 0;
}
