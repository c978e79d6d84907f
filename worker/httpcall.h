/* httpcall: the worker's one wrapper around libcurl (httpcall.c and httpcall_multi.c, through
 * httpcall_internal.h, are the only files that include <curl/curl.h>).
 *
 * Design: each executor thread owns one httpcall_multi (a curl multi handle) and drives many
 * concurrent transfers on it, so in-flight HTTP jobs are not bounded by the thread count. One
 * httpcall is one transfer built from one job: method, URL, headers, body, timeouts, the salvo
 * headers (Idempotency-Key, X-Salvo-Scheduled-At, X-Salvo-Attempt), http/https only, TLS
 * verification always on, redirects only when the job asks, every connection checked against
 * the target policy (netguard.h). Its result says how it ended in
 * salvo's terms. Neither object may be used by two threads at once, except
 * httpcall_multi_wakeup, which any thread may call. */
#ifndef SALVO_HTTPCALL_H
#define SALVO_HTTPCALL_H

#include "job.h"
#include "netguard.h"

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct httpcall_multi httpcall_multi;
typedef struct httpcall httpcall;

typedef enum httpcall_err {
    HTTPCALL_OK = 0,  /* a response arrived; status holds it, whatever it is */
    HTTPCALL_TIMEOUT, /* the job's connect or total timeout expired */
    HTTPCALL_CONNECT, /* could not connect, reset, TLS failure, no or broken reply */
    HTTPCALL_INVALID, /* cannot be sent at all: bad URL, refused protocol, too many redirects */
} httpcall_err;

typedef struct httpcall_result {
    httpcall_err err;
    int status;             /* HTTP status, 0 when none arrived */
    int64_t retry_after_ms; /* Retry-After (seconds or HTTP date), -1 when absent */
    const char *body;       /* first bytes of the response body (NUL-terminated); owned by call */
    size_t body_len;
    bool truncated; /* the body was longer than the capture cap */
    int64_t duration_ms;
    char error[256]; /* libcurl's error text when err != HTTPCALL_OK */
} httpcall_result;

typedef struct httpcall_limits {
    long max_host_conns;  /* per host; 0 = unlimited */
    long max_total_conns; /* per multi; 0 = unlimited */
    long max_cached;      /* idle connections kept for reuse; 0 = libcurl's default */
} httpcall_limits;

/* curl_global_init, once in main before any thread starts; and its cleanup at exit.
 * ERR_OK or ERR_NOMEM. Not thread-safe. */
int httpcall_global_init(void);
void httpcall_global_fini(void);

/* The target policy every transfer built afterwards follows: guard (host allow-list and refused
 * addresses; NULL = the default address policy, any host) and ca_file (PEM bundle to verify
 * https targets with instead of the system store; NULL = system store). Both are borrowed and
 * must outlive every call. A refused target ends the transfer as HTTPCALL_INVALID before any
 * connection is made, with an error starting "target refused: ". Call from main before any
 * thread starts; not thread-safe. */
void httpcall_set_policy(const netguard *guard, const char *ca_file);

/* Per-thread reuse of libcurl easy handles: a thread that builds and frees many calls (an
 * executor) calls httpcall_thread_init once, and httpcall_thread_fini before it ends, which
 * frees what it kept. Other threads simply allocate and free. */
void httpcall_thread_init(void);
void httpcall_thread_fini(void);

/* A multi handle with the given connection limits. ERR_OK or ERR_NOMEM; caller owns *out. */
int httpcall_multi_new(const httpcall_limits *lim, httpcall_multi **out);
/* Free a multi. Calls still attached must be freed first (httpcall_free). Safe on NULL. */
void httpcall_multi_free(httpcall_multi *m);
/* Interrupt a httpcall_multi_poll in progress (or make the next one return at once).
 * Thread-safe: the one call other threads may make. */
void httpcall_multi_wakeup(httpcall_multi *m);
/* Wait up to timeout_ms for transfer activity, a wakeup, or readability of the extra fds (their
 * revents are filled). libcurl's own timers shorten the wait. ERR_OK or ERR_IO. */
int httpcall_multi_poll(httpcall_multi *m, struct pollfd *extra, size_t nextra, int timeout_ms);
/* Drive every transfer as far as it can go without blocking. ERR_OK or ERR_IO. */
int httpcall_multi_perform(httpcall_multi *m);
/* The next finished call (detached from the multi, result filled), or NULL. Call after
 * httpcall_multi_perform until it returns NULL. */
httpcall *httpcall_multi_next_done(httpcall_multi *m);
/* Transfers attached and not yet handed out by next_done. */
size_t httpcall_multi_active(const httpcall_multi *m);

/* Build a transfer for j (kind JOB_HTTP, templates already expanded). j is borrowed and must
 * outlive the call (the body is sent from it). capture_cap bounds the kept response body.
 * ERR_OK, ERR_NOMEM, or ERR_INVAL with reason (e.g. a header holding a line break, or "target
 * refused: ..." for a host outside the allow-list or a refused address literal). */
int httpcall_new(const job *j, size_t capture_cap, httpcall **out, char *reason, size_t cap);
/* How httpcall_preconnect holds a request back until httpcall_release. */
typedef enum httpcall_hold {
    HTTPCALL_HOLD_NONE,  /* not held: the request goes out as soon as the call starts */
    HTTPCALL_HOLD_CORK,  /* start the call at most 180 ms ahead: libcurl writes the request
                          * into the corked connection, where the kernel keeps it */
    HTTPCALL_HOLD_STAGE, /* start the call now: libcurl writes the request into a local
                          * socketpair, from where it is lifted into memory once libcurl waits
                          * for the reply; httpcall_stage_move, at most 180 ms ahead, writes it
                          * into the corked connection */
} httpcall_hold;

/* Precise mode: open the TCP connection now (the URL's host must be a numeric address; otherwise
 * nothing happens), so that at the due instant the request goes out over an established
 * connection instead of paying the handshake. When libcurl reuses a cached connection instead,
 * the socket is closed unused with the call. url is the job's (expanded) URL.
 * With hold, the socket is also corked (TCP_CORK) when the request is small plain HTTP, and the
 * kernel keeps what is written until httpcall_release (or for at most 200 ms): the result says
 * how. stage_ms > 0 asks for staging as well, the instant being stage_ms away: the call's total
 * timeout is lengthened by as much, since libcurl counts it from the early start. */
httpcall_hold httpcall_preconnect(httpcall *c, const char *url, bool hold, int64_t stage_ms);
/* Whether c's request still waits to be written into its corked connection
 * (HTTPCALL_HOLD_STAGE, not yet moved: in its socketpair, or lifted into memory). */
bool httpcall_staged(const httpcall *c);
/* A staged call (after httpcall_start, at most 180 ms before its instant): write the request
 * into the corked connection (libcurl already holds it when the request was lifted; otherwise
 * the bytes are copied from the pair and the connection put under libcurl's descriptor). Any
 * other call: nothing. ERR_OK, or ERR_IO when the request could not be moved whole (the transfer
 * then fails as a broken connection and nothing partial is sent). Same thread as the multi. */
int httpcall_stage_move(httpcall *c);
/* Let a held request go (uncork; a staged one is moved first). Call at the due instant, after
 * httpcall_start; before it, the request simply goes out as soon as it is written. */
void httpcall_release(httpcall *c);
/* Attach to m: the request starts on the next perform. ERR_OK or ERR_INVAL. */
int httpcall_start(httpcall_multi *m, httpcall *c);
/* The outcome; valid once next_done returned the call. */
const httpcall_result *httpcall_result_get(const httpcall *c);
/* Caller's pointer, carried with the call. */
void httpcall_set_ud(httpcall *c, void *ud);
void *httpcall_ud(const httpcall *c);
/* Abort (when attached) and free. Safe on NULL. */
void httpcall_free(httpcall *c);

#endif
