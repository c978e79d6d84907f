/* tgt_conn: client connections of the recording target, a table indexed by descriptor. */
#include "tgt_conn.h"

#include "err.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* First input buffer: a job request (headers + small JSON body) fits in one read. */
#define TGT_CONN_FIRST_IN 4096
/* Input buffers that grew past this are freed on close, so a few large bodies do not pin
 * memory across 10,000 reused slots. */
#define TGT_CONN_KEEP_IN (64 * 1024)

int tgt_conn_table_init(tgt_conn_table *t, size_t nslots)
{
    memset(t, 0, sizeof *t);
    t->slots = calloc(nslots, sizeof *t->slots);
    if (!t->slots)
        return ERR_NOMEM;
    t->nslots = nslots;
    return ERR_OK;
}

void tgt_conn_table_fini(tgt_conn_table *t)
{
    if (!t || !t->slots)
        return;
    for (size_t i = 0; i < t->nslots; i++) {
        tgt_conn *c = t->slots[i];
        if (!c)
            continue;
        if (c->fd >= 0)
            close(c->fd);
        free(c->in);
        free(c);
    }
    free(t->slots);
    memset(t, 0, sizeof *t);
}

tgt_conn *tgt_conn_open(tgt_conn_table *t, int fd)
{
    if (fd < 0 || (size_t)fd >= t->nslots) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    tgt_conn *c = t->slots[fd];
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            return NULL;
        }
        t->slots[fd] = c;
    }
    uint32_t gen = c->gen;
    char *in = c->in;
    size_t in_cap = c->in_cap;
    memset(c, 0, sizeof *c);
    c->gen = gen;
    c->in = in;
    c->in_cap = in_cap;
    c->fd = fd;
    c->id = ++t->opened;
    t->open++;
    if (t->open > t->max_open)
        t->max_open = t->open;
    /* Replies go out in one send; without NODELAY a reply on a kept-alive connection can wait
     * for the client's delayed ACK of the previous one (40 ms). */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
}

tgt_conn *tgt_conn_get(const tgt_conn_table *t, int fd)
{
    if (fd < 0 || (size_t)fd >= t->nslots || !t->slots[fd] || t->slots[fd]->fd != fd)
        return NULL;
    return t->slots[fd];
}

void tgt_conn_close(tgt_conn_table *t, tgt_conn *c)
{
    if (c->fd < 0)
        return;
    close(c->fd); /* also removes it from the epoll set */
    c->fd = -1;
    c->gen++;
    c->in_len = 0;
    if (c->in_cap > TGT_CONN_KEEP_IN) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
    t->open--;
}

int tgt_conn_reserve(tgt_conn *c, size_t want, size_t max)
{
    if (c->in_cap - c->in_len >= want)
        return ERR_OK;
    if (c->in_cap >= max)
        return ERR_RANGE;
    size_t cap = c->in_cap ? c->in_cap : TGT_CONN_FIRST_IN;
    while (cap - c->in_len < want && cap < max)
        cap *= 2;
    if (cap > max)
        cap = max;
    char *grown = realloc(c->in, cap);
    if (!grown)
        return ERR_NOMEM;
    c->in = grown;
    c->in_cap = cap;
    return ERR_OK;
}

void tgt_conn_note_read(tgt_conn *c, size_t from, int64_t read_ns, int64_t rx_ns)
{
    if (!c->busy && c->start_ns == 0)
        c->start_ns = read_ns;
    else if (c->busy && c->next_ns == 0)
        c->next_ns = read_ns;
    c->last_ns = read_ns;
    c->last_rx_ns = rx_ns;
    /* The request whose line is awaited starts at 0, or after the one being answered. Bytes
     * before `from` were scanned by earlier calls (or by tgt_conn_note_taken). */
    int64_t *line = c->busy ? &c->next_line_rx_ns : &c->line_rx_ns;
    size_t at = c->busy && c->consumed > from ? c->consumed : from;
    if (*line == 0 && at < c->in_len && memchr(c->in + at, '\n', c->in_len - at))
        *line = rx_ns;
}

void tgt_conn_note_taken(tgt_conn *c)
{
    size_t at = c->consumed;
    if (c->in_len <= at)
        return;
    if (c->next_ns == 0)
        c->next_ns = c->last_ns;
    if (c->next_line_rx_ns == 0 && memchr(c->in + at, '\n', c->in_len - at))
        c->next_line_rx_ns = c->last_rx_ns;
}

void tgt_conn_advance(tgt_conn *c)
{
    size_t rest = c->in_len - c->consumed;
    memmove(c->in, c->in + c->consumed, rest);
    c->in_len = rest;
    c->consumed = 0;
    /* Bytes of the next request that were read while this reply was pending carry their own
     * stamp; if they came in the same read as this request's tail, that read's stamp. */
    c->start_ns = rest == 0 ? 0 : c->next_ns ? c->next_ns : c->last_ns;
    c->next_ns = 0;
    c->line_rx_ns = c->next_line_rx_ns;
    c->next_line_rx_ns = 0;
    c->busy = 0;
    c->held = 0;
    c->out_len = 0;
    c->out_off = 0;
}
