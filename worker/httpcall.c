/* httpcall: libcurl transfers built from jobs, with curl's errors turned into salvo's, and the
 * target policy applied to every connection. The multi handle is in httpcall_multi.c. */
#include "httpcall_internal.h"

#include "clock.h"
#include "curlconnect.h"
#include "err.h"
#include "preconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Per-transfer receive buffer. libcurl's 16 KiB default times 5,000 concurrent transfers would
 * be 80 MB of buffers for replies we cap at a few KiB anyway. */
#define HTTPCALL_BUFFER     4096
#define HTTPCALL_MAX_REDIRS 10
/* Largest request held in a corked socket: well inside one TCP segment on any network. */
#define HTTPCALL_HOLD_MAX_BYTES 1024
/* What libcurl and salvo add to a request besides the job's own parts (Host, User-Agent,
 * Idempotency-Key, X-Salvo-*, request line syntax). */
#define HTTPCALL_REQ_OVERHEAD 400
/* Longest "scheme://authority" whose policy verdict is kept (a DNS name is at most 253 bytes). */
#define HTTPCALL_AUTH_MAX 300

static const netguard *httpcall_guard;
static const char *httpcall_ca_file;
/* Bumped by every httpcall_set_policy, so a URL verdict kept under an older policy is never
 * reused (httpcall_url_cached). */
static _Atomic unsigned httpcall_policy_gen;

void httpcall_set_policy(const netguard *guard, const char *ca_file)
{
    httpcall_guard = guard;
    httpcall_ca_file = ca_file;
    httpcall_policy_gen++;
}

/* Easy handles kept per executor thread for the next job: curl_easy_init and _cleanup were a
 * good part of a job's malloc traffic, and curl_easy_reset keeps the handle's allocations.
 * Only threads that called httpcall_thread_init keep any (they drop them at httpcall_thread_fini),
 * so no thread leaves handles behind when it ends. */
#define HTTPCALL_EASY_CACHE 128
static _Thread_local CURL *httpcall_easy_cache[HTTPCALL_EASY_CACHE];
static _Thread_local size_t httpcall_easy_n;
static _Thread_local bool httpcall_easy_on;
/* Whether this libcurl calls connect() on a socket reported connected (curlconnect.h). */
static bool httpcall_connect_marks;

static CURL *httpcall_easy_get(void)
{
    return httpcall_easy_n ? httpcall_easy_cache[--httpcall_easy_n] : curl_easy_init();
}

static void httpcall_easy_put(CURL *e)
{
    if (httpcall_easy_on && httpcall_easy_n < HTTPCALL_EASY_CACHE) {
        curl_easy_reset(e);
        httpcall_easy_cache[httpcall_easy_n++] = e;
        return;
    }
    curl_easy_cleanup(e);
}

void httpcall_thread_init(void)
{
    httpcall_easy_on = true;
}

void httpcall_thread_fini(void)
{
    httpcall_easy_on = false;
    while (httpcall_easy_n)
        curl_easy_cleanup(httpcall_easy_cache[--httpcall_easy_n]);
}

int httpcall_global_init(void)
{
    httpcall_connect_marks = curlconnect_needed();
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? ERR_OK : ERR_NOMEM;
}

void httpcall_global_fini(void)
{
    curl_global_cleanup();
}

/* Map a finished transfer's CURLcode onto salvo's three kinds of failure. */
static httpcall_err httpcall_classify(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return HTTPCALL_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return HTTPCALL_TIMEOUT;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_NOT_BUILT_IN:
        return HTTPCALL_INVALID;
    default:
        return HTTPCALL_CONNECT;
    }
}

void httpcall_finish(httpcall *c, CURLcode rc)
{
    long status = 0;
    curl_off_t ra = 0, total_us = 0;
    curl_easy_getinfo(c->e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c->e, CURLINFO_RETRY_AFTER, &ra);
    curl_easy_getinfo(c->e, CURLINFO_TOTAL_TIME_T, &total_us);
    c->res.err = httpcall_classify(rc);
    c->res.status = (int)status;
    c->res.retry_after_ms = ra > 0 ? (int64_t)ra * 1000 : -1;
    c->res.duration_ms = (int64_t)total_us / 1000;
    c->res.body = c->buf ? c->buf : "";
    if (rc != CURLE_OK && c->refused[0]) { /* libcurl only saw a socket it could not open */
        c->res.err = HTTPCALL_INVALID;
        snprintf(c->res.error, sizeof c->res.error, "target refused: %s", c->refused);
    } else if (rc != CURLE_OK) {
        const char *msg = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
        snprintf(c->res.error, sizeof c->res.error, "%s", msg);
    }
}

static size_t httpcall_on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    httpcall *c = ud;
    size_t n = size * nmemb;
    size_t room = c->cap - c->res.body_len;
    size_t take = n < room ? n : room;
    if (take < n)
        c->res.truncated = true;
    if (take > 0) {
        /* Grown as bytes arrive: most replies are tiny, and thousands are in flight. */
        char *p = realloc(c->buf, c->res.body_len + take + 1);
        if (!p)
            return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
        c->buf = p;
        memcpy(c->buf + c->res.body_len, data, take);
        c->res.body_len += take;
        c->buf[c->res.body_len] = '\0';
    }
    /* The rest is read and dropped: a long reply is not a failed job. */
    return n;
}

/* Headers salvo sets itself; a job's own copy is dropped so the request carries one of each. */
static bool httpcall_reserved(const char *name)
{
    static const char *const names[] = {"Idempotency-Key", "X-Salvo-Scheduled-At",
                                        "X-Salvo-Attempt", "Expect"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(name, names[i]) == 0)
            return true;
    }
    return false;
}

static int httpcall_add_header(struct curl_slist **l, const char *name, const char *value)
{
    char line[JOB_HEADER_MAX + 8];
    size_t nl = strlen(name), vl = strlen(value);
    if (nl + vl + 3 > sizeof line) /* callers bound both parts; this only keeps the copy safe */
        return ERR_INVAL;
    /* Joined by hand, not snprintf: four of these per job were 4,600 instructions. "Name;" is
     * libcurl's spelling for a header sent with an empty value. */
    memcpy(line, name, nl);
    if (vl) {
        memcpy(line + nl, ": ", 2);
        memcpy(line + nl + 2, value, vl + 1);
    } else {
        memcpy(line + nl, ";", 2);
    }
    struct curl_slist *n = curl_slist_append(*l, line);
    if (!n)
        return ERR_NOMEM;
    *l = n;
    return ERR_OK;
}

static int httpcall_headers(httpcall *c, const job *j, char *reason, size_t cap)
{
    for (size_t i = 0; i < j->http.nheaders; i++) {
        const job_kv *h = &j->http.headers[i];
        if (strpbrk(h->name, "\r\n:") || strpbrk(h->value, "\r\n")) {
            snprintf(reason, cap, "header %.64s holds a line break or colon", h->name);
            return ERR_INVAL;
        }
        if (strlen(h->name) + strlen(h->value) > JOB_HEADER_MAX) {
            snprintf(reason, cap, "header %.64s longer than %d bytes", h->name, JOB_HEADER_MAX);
            return ERR_INVAL;
        }
        if (!httpcall_reserved(h->name) && httpcall_add_header(&c->hdrs, h->name, h->value))
            return ERR_NOMEM;
    }
    char iso[40], attempt[16];
    clock_format_iso(j->due_ms * CLOCK_NS_PER_MS, 3, iso, sizeof iso);
    snprintf(attempt, sizeof attempt, "%u", j->attempt);
    if (httpcall_add_header(&c->hdrs, "Idempotency-Key", j->id) ||
        httpcall_add_header(&c->hdrs, "X-Salvo-Scheduled-At", iso) ||
        httpcall_add_header(&c->hdrs, "X-Salvo-Attempt", attempt) ||
        httpcall_add_header(&c->hdrs, "Expect", "")) /* no 100-continue round trip */
        return ERR_NOMEM;
    return ERR_OK;
}

/* Method and body. GET and HEAD use libcurl's own modes so it reads replies correctly. */
static void httpcall_method(CURL *e, const job_http *h)
{
    bool body = h->body != NULL;
    if (strcmp(h->method, "GET") == 0 && !body) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        return;
    }
    if (strcmp(h->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        return;
    }
    if (strcmp(h->method, "POST") == 0 || body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? h->body_len : 0));
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? h->body : "");
    }
    if (strcmp(h->method, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, h->method);
}

/* Length of url's "scheme://authority" when it is made only of characters that leave libcurl
 * nothing to interpret (lower-case http or https, letters, digits, '.', '-', ':', and the
 * brackets of an IPv6 literal; no user info, no percent-encoding) and is followed by '/' or the
 * end; 0 otherwise. Two URLs with the same such prefix name the same host and port. */
static size_t httpcall_plain_authority(const char *url)
{
    size_t n = strncmp(url, "http://", 7) == 0 ? 7 : strncmp(url, "https://", 8) == 0 ? 8 : 0;
    if (n == 0)
        return 0;
    while (url[n] && (strchr(".-:[]", url[n]) || (url[n] >= 'a' && url[n] <= 'z') ||
                      (url[n] >= 'A' && url[n] <= 'Z') || (url[n] >= '0' && url[n] <= '9')))
        n++;
    return (url[n] == '/' || url[n] == '\0') && n < HTTPCALL_AUTH_MAX ? n : 0;
}

/* The URLs of one fan-out share their target: the last authority that passed the policy is
 * kept per thread, and a URL with the same plain authority passes without being parsed again
 * (9,000 instructions a job). Only passes are kept, so every refusal still says why. */
static _Thread_local char httpcall_ok_auth[HTTPCALL_AUTH_MAX];
static _Thread_local size_t httpcall_ok_len;
static _Thread_local unsigned httpcall_ok_gen;

static bool httpcall_url_cached(const char *url, size_t n)
{
    return n && n == httpcall_ok_len && httpcall_ok_gen == httpcall_policy_gen &&
           memcmp(url, httpcall_ok_auth, n) == 0;
}

static void httpcall_url_keep(const char *url, size_t n)
{
    memcpy(httpcall_ok_auth, url, n);
    httpcall_ok_len = n;
    httpcall_ok_gen = httpcall_policy_gen;
}

/* Whether url's host passes the allow-list, and its address the policy when it is a literal
 * (so a refused literal never becomes a transfer). Parsed by libcurl itself: a second parser
 * could read another host out of a hostile URL than the one libcurl connects to. */
static bool httpcall_url_ok(const char *url, char *why, size_t cap)
{
    size_t auth = httpcall_plain_authority(url);
    if (httpcall_url_cached(url, auth))
        return true;
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    bool ok = false;
    if (!u) { /* the policy fails closed */
        snprintf(why, cap, "out of memory checking the URL");
        return false;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        ok = true; /* not a URL libcurl can fetch: the transfer fails as invalid by itself */
        goto out;
    }
    struct sockaddr_storage a;
    if (!netguard_host_ok(httpcall_guard, host, (unsigned)atoi(port)))
        snprintf(why, cap, "host %.100s is not in the allowed hosts", host);
    else if (netguard_literal(host, &a))
        ok = netguard_addr_ok(httpcall_guard, (struct sockaddr *)&a, why, cap);
    else
        ok = true;
    if (ok)
        httpcall_url_keep(url, auth);
out:
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
}

static curl_socket_t httpcall_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a);
static int httpcall_sockopt(void *ud, curl_socket_t fd, curlsocktype purpose);

/* Options every transfer gets, whatever the job says. */
static void httpcall_safe_defaults(httpcall *c)
{
    CURL *e = c->e;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)HTTPCALL_BUFFER);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)c);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, httpcall_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "salvo-worker");
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, httpcall_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, c);
    curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, httpcall_sockopt);
    curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, c);
    if (httpcall_ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, httpcall_ca_file);
}

int httpcall_new(const job *j, size_t capture_cap, httpcall **out, char *reason, size_t cap)
{
    httpcall *c = calloc(1, sizeof *c);
    int rc = ERR_NOMEM;
    if (!c)
        goto fail;
    c->pre_fd = c->pre_given = c->stage_rd = c->stage_wr = -1;
    c->cap = capture_cap;
    c->e = httpcall_easy_get();
    if (!c->e)
        goto fail;
    rc = httpcall_headers(c, j, reason, cap);
    if (rc != ERR_OK)
        goto fail;
    httpcall_safe_defaults(c);
    const job_http *h = &j->http;
    rc = ERR_INVAL;
    if (!httpcall_url_ok(h->url, c->refused, sizeof c->refused)) {
        snprintf(reason, cap, "target refused: %s", c->refused);
        goto fail;
    }
    curl_easy_setopt(c->e, CURLOPT_URL, h->url);
    curl_easy_setopt(c->e, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(c->e, CURLOPT_CONNECTTIMEOUT_MS, (long)h->connect_timeout_ms);
    c->timeout_ms = h->timeout_ms;
    curl_easy_setopt(c->e, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
    curl_easy_setopt(c->e, CURLOPT_FOLLOWLOCATION, h->follow_redirects ? 1L : 0L);
    curl_easy_setopt(c->e, CURLOPT_MAXREDIRS, (long)HTTPCALL_MAX_REDIRS);
    httpcall_method(c->e, h);
    c->res.retry_after_ms = -1;
    c->req_bytes = strlen(h->method) + strlen(h->url) + h->body_len + HTTPCALL_REQ_OVERHEAD;
    for (size_t i = 0; i < h->nheaders; i++)
        c->req_bytes += strlen(h->headers[i].name) + strlen(h->headers[i].value) + 4;
    *out = c;
    return ERR_OK;
fail:
    if (rc == ERR_NOMEM)
        snprintf(reason, cap, "out of memory");
    httpcall_free(c);
    return rc;
}

/* ---- precise mode: connect ahead of the instant ------------------------------------------ */

/* CURLOPT_OPENSOCKETFUNCTION: hand over the pre-connected socket when libcurl opens a new
 * connection to its address; otherwise open one as libcurl would. */
static curl_socket_t httpcall_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    httpcall *c = ud;
    /* The one place every connection passes, after DNS and on each redirect: the address is the
     * one about to be connected to, the effective URL the one being fetched (its host matters
     * only to an allow-list: parsing it costs microseconds at the due instant). */
    char *url = NULL;
    if (netguard_has_hosts(httpcall_guard))
        curl_easy_getinfo(c->e, CURLINFO_EFFECTIVE_URL, &url);
    if (!netguard_addr_ok(httpcall_guard, &a->addr, c->refused, sizeof c->refused) ||
        (url && !httpcall_url_ok(url, c->refused, sizeof c->refused)))
        return CURL_SOCKET_BAD;
    c->refused[0] = '\0'; /* an earlier address of the same name was refused; this one is fine */
    if (purpose == CURLSOCKTYPE_IPCXN && c->pre_fd >= 0 && preconn_same(&c->pre_addr, &a->addr)) {
        if (c->stage_wr >= 0) { /* staged: the pair's end now, the connection at the move */
            c->pre_given = c->stage_wr;
            c->stage_wr = -1;
            return c->pre_given;
        }
        c->pre_given = c->pre_fd;
        c->pre_fd = -1;
        return c->pre_given;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* CURLOPT_SOCKOPTFUNCTION: tell libcurl the handed-over socket needs no connect(). A
 * pre-connected TCP socket survives libcurl 7.x's connect() regardless (it completes a
 * non-blocking connect); a staging socketpair end needs curlconnect. */
static int httpcall_sockopt(void *ud, curl_socket_t fd, curlsocktype purpose)
{
    const httpcall *c = ud;
    (void)purpose;
    if (fd != c->pre_given)
        return CURL_SOCKOPT_OK;
    if (httpcall_staged(c) && httpcall_connect_marks)
        curlconnect_mark(fd);
    return CURL_SOCKOPT_ALREADY_CONNECTED;
}

httpcall_hold httpcall_preconnect(httpcall *c, const char *url, bool hold, int64_t stage_ms)
{
    char why[160];
    if (c->pre_fd >= 0 || !preconn_addr(url, &c->pre_addr) ||
        !netguard_addr_ok(httpcall_guard, (struct sockaddr *)&c->pre_addr, why, sizeof why))
        return HTTPCALL_HOLD_NONE;
    /* Holding the request in a corked socket only works when it fits one segment (a larger one
     * would send its first part early) and needs no handshake after TCP's (TLS would stall). */
    hold = hold && c->req_bytes <= HTTPCALL_HOLD_MAX_BYTES && strncasecmp(url, "http://", 7) == 0;
    c->pre_fd = preconn_open(&c->pre_addr, hold, &hold);
    if (c->pre_fd < 0 || !hold)
        return HTTPCALL_HOLD_NONE;
    /* A held request must go out on this socket, never on a cached uncorked connection. */
    curl_easy_setopt(c->e, CURLOPT_FRESH_CONNECT, 1L);
    return stage_ms > 0 && httpcall_stage_open(c, stage_ms) ? HTTPCALL_HOLD_STAGE
                                                            : HTTPCALL_HOLD_CORK;
}

void httpcall_release(httpcall *c)
{
    if (httpcall_staged(c)) /* late for its window: moved and let go at once */
        httpcall_stage_move(c);
    if (c->pre_given >= 0)
        preconn_uncork(c->pre_given);
    if (c->pre_fd >= 0) /* released before libcurl took it: it must not hold anything either */
        preconn_uncork(c->pre_fd);
}

const httpcall_result *httpcall_result_get(const httpcall *c)
{
    return &c->res;
}

void httpcall_set_ud(httpcall *c, void *ud)
{
    c->ud = ud;
}

void *httpcall_ud(const httpcall *c)
{
    return c->ud;
}

void httpcall_free(httpcall *c)
{
    if (!c)
        return;
    if (c->owner) {
        curl_multi_remove_handle(c->shard->m, c->e);
        c->owner->active--;
    }
    if (c->e)
        httpcall_easy_put(c->e);
    if (c->pre_fd >= 0)
        close(c->pre_fd); /* libcurl reused a cached connection instead, or never started */
    httpcall_stage_close(c);
    curl_slist_free_all(c->hdrs);
    free(c->buf);
    free(c);
}
