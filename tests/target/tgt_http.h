/* tgt_http: incremental HTTP/1.1 request parser of the recording target (request line, headers,
 * Content-Length body). Spans point into the caller's buffer; nothing is allocated. */
#ifndef SALVO_TGT_HTTP_H
#define SALVO_TGT_HTTP_H

#include <stddef.h>

/* A request head beyond 64 KiB is a bug or an attack; real clients send well under 8 KiB. */
#define TGT_HTTP_MAX_HEAD (64 * 1024)
/* Job bodies are small; 8 MiB bounds memory per connection with 10,000 connections open. */
#define TGT_HTTP_MAX_BODY (8 * 1024 * 1024)
/* More header lines than this answers 431, like the head size limit. */
#define TGT_HTTP_MAX_HEADERS 100

/* Borrowed bytes inside the parsed buffer, not NUL-terminated. */
typedef struct tgt_span {
    const char *p;
    size_t n;
} tgt_span;

typedef struct tgt_http_req {
    tgt_span method;
    tgt_span target; /* as sent, with any query string */
    tgt_span path;   /* target up to '?' */
    tgt_span names[TGT_HTTP_MAX_HEADERS];
    tgt_span values[TGT_HTTP_MAX_HEADERS]; /* optional whitespace trimmed */
    size_t nheaders;
    size_t head_len;  /* bytes up to and including the empty line */
    size_t body_len;  /* Content-Length, 0 when absent */
    size_t total_len; /* head_len + body_len: where the next request starts */
    int keep_alive;   /* HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with keep-alive */
    int error_status; /* on ERR_PARSE: the status to answer (400, 413, 431, 501, 505) */
} tgt_http_req;

/* tgt_http_parse result when the buffer holds only part of a request. */
#define TGT_HTTP_PARTIAL 1

/* Parse the request at the start of buf[0..len). Returns ERR_OK with *req filled once head and
 * body are both in the buffer, TGT_HTTP_PARTIAL when more bytes are needed, or ERR_PARSE with
 * req->error_status set (the connection must then be answered and closed). The spans in *req
 * borrow buf. Pure function; thread-safe. */
int tgt_http_parse(const char *buf, size_t len, tgt_http_req *req);

/* Value of header `name` (case-insensitive), or a span with p == NULL when absent. */
tgt_span tgt_http_header(const tgt_http_req *req, const char *name);

/* Reason phrase for a status code ("OK", "Internal Server Error"...); "Status" when unknown. */
const char *tgt_http_reason(int status);

#endif
