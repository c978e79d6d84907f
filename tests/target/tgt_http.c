/* tgt_http: incremental HTTP/1.1 request parser of the recording target. */
#include "tgt_http.h"

#include "err.h"

#include <string.h>
#include <strings.h>

/* Length of the head (through the empty line), or 0 when it is not complete yet. Bare LF line
 * ends are accepted as well as CRLF, as most servers do. */
static size_t tgt_http_head_end(const char *buf, size_t len)
{
    const char *p = buf;
    const char *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return 0;
        if (nl + 1 < end && nl[1] == '\n')
            return (size_t)(nl + 2 - buf);
        if (nl + 2 < end && nl[1] == '\r' && nl[2] == '\n')
            return (size_t)(nl + 3 - buf);
        p = nl + 1;
    }
    return 0;
}

/* Next line of [*pos, end) without its CR/LF; advances *pos past the line end. */
static tgt_span tgt_http_line(const char **pos, const char *end)
{
    const char *start = *pos;
    const char *nl = memchr(start, '\n', (size_t)(end - start));
    const char *stop = nl ? nl : end;
    *pos = nl ? nl + 1 : end;
    if (stop > start && stop[-1] == '\r')
        stop--;
    return (tgt_span){start, (size_t)(stop - start)};
}

static int tgt_http_fail(tgt_http_req *req, int status)
{
    req->error_status = status;
    return ERR_PARSE;
}

static int tgt_http_is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int tgt_http_span_eq(tgt_span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && strncasecmp(s.p, lit, n) == 0;
}

/* "METHOD SP target SP HTTP/1.x". Sets method, target, path; *minor to the version digit. */
static int tgt_http_request_line(tgt_span line, tgt_http_req *req, int *minor)
{
    const char *end = line.p + line.n;
    const char *sp1 = memchr(line.p, ' ', line.n);
    if (!sp1 || sp1 == line.p)
        return tgt_http_fail(req, 400);
    for (const char *c = line.p; c < sp1; c++)
        if (!tgt_http_is_tchar(*c))
            return tgt_http_fail(req, 400);
    const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
    if (!sp2 || sp2 == sp1 + 1)
        return tgt_http_fail(req, 400);
    tgt_span version = {sp2 + 1, (size_t)(end - sp2 - 1)};
    if (version.n != 8 || strncmp(version.p, "HTTP/1.", 7) != 0)
        return tgt_http_fail(req,
                             version.n >= 5 && strncmp(version.p, "HTTP/", 5) == 0 ? 505 : 400);
    if (version.p[7] != '0' && version.p[7] != '1')
        return tgt_http_fail(req, 505);
    *minor = version.p[7] - '0';
    req->method = (tgt_span){line.p, (size_t)(sp1 - line.p)};
    req->target = (tgt_span){sp1 + 1, (size_t)(sp2 - sp1 - 1)};
    const char *q = memchr(req->target.p, '?', req->target.n);
    req->path = (tgt_span){req->target.p, q ? (size_t)(q - req->target.p) : req->target.n};
    return ERR_OK;
}

/* One "name: value" line into the header table. */
static int tgt_http_header_line(tgt_span line, tgt_http_req *req)
{
    if (line.n > 0 && (line.p[0] == ' ' || line.p[0] == '\t'))
        return tgt_http_fail(req, 400); /* obsolete line folding */
    const char *colon = memchr(line.p, ':', line.n);
    if (!colon || colon == line.p)
        return tgt_http_fail(req, 400);
    for (const char *c = line.p; c < colon; c++)
        if (!tgt_http_is_tchar(*c))
            return tgt_http_fail(req, 400);
    if (req->nheaders == TGT_HTTP_MAX_HEADERS)
        return tgt_http_fail(req, 431);
    const char *v = colon + 1;
    const char *end = line.p + line.n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    req->names[req->nheaders] = (tgt_span){line.p, (size_t)(colon - line.p)};
    req->values[req->nheaders] = (tgt_span){v, (size_t)(end - v)};
    req->nheaders++;
    return ERR_OK;
}

/* Content-Length must be plain digits; repeated headers must agree (request smuggling). */
static int tgt_http_body_len(tgt_http_req *req)
{
    int seen = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (tgt_http_span_eq(req->names[i], "transfer-encoding"))
            return tgt_http_fail(req, 501);
        if (!tgt_http_span_eq(req->names[i], "content-length"))
            continue;
        tgt_span v = req->values[i];
        size_t n = 0;
        if (v.n == 0 || v.n > 10)
            return tgt_http_fail(req, v.n > 10 ? 413 : 400);
        for (size_t k = 0; k < v.n; k++) {
            if (v.p[k] < '0' || v.p[k] > '9')
                return tgt_http_fail(req, 400);
            n = n * 10 + (size_t)(v.p[k] - '0');
        }
        if (seen && n != req->body_len)
            return tgt_http_fail(req, 400);
        if (n > TGT_HTTP_MAX_BODY)
            return tgt_http_fail(req, 413);
        req->body_len = n;
        seen = 1;
    }
    return ERR_OK;
}

/* Does the comma-separated Connection header hold token `tok`? */
static int tgt_http_connection_has(const tgt_http_req *req, const char *tok)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!tgt_http_span_eq(req->names[i], "connection"))
            continue;
        const char *p = req->values[i].p;
        const char *end = p + req->values[i].n;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *stop = comma ? comma : end;
            tgt_span t = {p, (size_t)(stop - p)};
            while (t.n && (*t.p == ' ' || *t.p == '\t'))
                t.p++, t.n--;
            while (t.n && (t.p[t.n - 1] == ' ' || t.p[t.n - 1] == '\t'))
                t.n--;
            if (tgt_http_span_eq(t, tok))
                return 1;
            p = comma ? comma + 1 : end;
        }
    }
    return 0;
}

int tgt_http_parse(const char *buf, size_t len, tgt_http_req *req)
{
    memset(req, 0, sizeof *req);
    size_t head = tgt_http_head_end(buf, len);
    if (head == 0)
        return len > TGT_HTTP_MAX_HEAD ? tgt_http_fail(req, 431) : TGT_HTTP_PARTIAL;
    if (head > TGT_HTTP_MAX_HEAD)
        return tgt_http_fail(req, 431);
    const char *pos = buf;
    const char *end = buf + head;
    int minor = 1;
    int rc = tgt_http_request_line(tgt_http_line(&pos, end), req, &minor);
    while (rc == ERR_OK) {
        tgt_span line = tgt_http_line(&pos, end);
        if (line.n == 0)
            break;
        rc = tgt_http_header_line(line, req);
    }
    if (rc == ERR_OK)
        rc = tgt_http_body_len(req);
    if (rc != ERR_OK)
        return rc;
    req->head_len = head;
    req->total_len = head + req->body_len;
    req->keep_alive = minor == 1 ? !tgt_http_connection_has(req, "close")
                                 : tgt_http_connection_has(req, "keep-alive");
    return len >= req->total_len ? ERR_OK : TGT_HTTP_PARTIAL;
}

tgt_span tgt_http_header(const tgt_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (tgt_http_span_eq(req->names[i], name))
            return req->values[i];
    return (tgt_span){NULL, 0};
}

/* The statuses a test plan is likely to use; others get a generic phrase (clients ignore it). */
static const struct {
    int status;
    const char *reason;
} tgt_http_reasons[] = {
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {413, "Content Too Large"},
    {422, "Unprocessable Content"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *tgt_http_reason(int status)
{
    for (size_t i = 0; i < sizeof tgt_http_reasons / sizeof tgt_http_reasons[0]; i++)
        if (tgt_http_reasons[i].status == status)
            return tgt_http_reasons[i].reason;
    return "Status";
}
