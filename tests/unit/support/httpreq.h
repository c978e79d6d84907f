/* httpreq: the unit tests' HTTP client, one request over a raw socket to a server the test
 * started (httpd for /metrics and /healthz). cmocka asserts inside: a reply that is not HTTP
 * fails the calling test. */
#ifndef SALVO_TEST_HTTPREQ_H
#define SALVO_TEST_HTTPREQ_H

typedef struct httpreq_reply {
    int status;
    char head[2048];  /* status line and headers, NUL-terminated */
    char body[65536]; /* the body, NUL-terminated: a whole /metrics page fits */
} httpreq_reply;

/* Send "METHOD path HTTP/1.1" with Connection: close to ip:port and read the reply into r
 * (5 s receive timeout). Returns 0, or -1 when the connection is refused (the tests check that
 * a server is not listening). Thread-safe on distinct r. */
int httpreq_send(const char *ip, int port, const char *method, const char *path, httpreq_reply *r);

#endif
