/* prodstate: load and atomically save the producer's last-fired instants.
 *
 * File format (text, one record per line, so an operator can read it):
 *   salvo-producer-state 1                 header with PRODSTATE_VERSION
 *   <last_s> <digest:16 hex> <name>        one per entry that has fired; name runs to the EOL
 *   end <count>                            trailer: a file cut short is detected, not trusted */
#include "prodstate.h"

#include "err.h"
#include "fileio.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define PRODSTATE_MAX_BYTES (512L * 1024 * 1024) /* 200k entries need ~40 MB; beyond is junk */
#define PRODSTATE_HEADER    "salvo-producer-state"

static int prodstate_cmp(const void *a, const void *b)
{
    return strcmp(((const prodstate_rec *)a)->name, ((const prodstate_rec *)b)->name);
}

void prodstate_fini(prodstate *st)
{
    if (!st)
        return;
    free(st->recs);
    free(st->buf);
    memset(st, 0, sizeof *st);
}

const prodstate_rec *prodstate_find(const prodstate *st, const char *name)
{
    prodstate_rec key = {.name = name};
    if (st->n == 0)
        return NULL;
    return bsearch(&key, st->recs, st->n, sizeof key, prodstate_cmp);
}

/* Parse "<last_s> <digest> <name>" in place. */
static int prodstate_parse_rec(char *line, prodstate_rec *r)
{
    char *end;
    errno = 0;
    long long last = strtoll(line, &end, 10);
    if (errno || end == line || *end != ' ' || last < 0)
        return ERR_PARSE;
    char *hex = end + 1;
    unsigned long long dg = strtoull(hex, &end, 16);
    if (errno || end - hex != 16 || *end != ' ' || end[1] == '\0')
        return ERR_PARSE;
    r->last_s = last;
    r->digest = dg;
    r->name = end + 1;
    return ERR_OK;
}

/* Split buf into lines and check header, records and trailer. Returns the failing line (1-based)
 * or 0 when the file is well-formed. */
static size_t prodstate_parse(char *buf, size_t len, prodstate *st)
{
    size_t cap = 1, lineno = 0;
    for (size_t i = 0; i < len; i++)
        cap += buf[i] == '\n';
    st->recs = malloc(cap * sizeof *st->recs);
    if (!st->recs)
        return 0; /* the caller sees recs == NULL: out of memory */
    if (len == 0 || buf[len - 1] != '\n')
        return cap; /* empty, or the last line was cut short */
    bool ended = false;
    for (char *p = buf; *p; lineno++) {
        char *nl = strchr(p, '\n');
        *nl = '\0';
        unsigned long long count;
        char extra;
        if (ended)
            return lineno + 1; /* text after the trailer */
        if (lineno == 0) {
            char want[64];
            snprintf(want, sizeof want, "%s %d", PRODSTATE_HEADER, PRODSTATE_VERSION);
            if (strcmp(p, want) != 0)
                return 1;
        } else if (sscanf(p, "end %llu%c", &count, &extra) == 1) {
            if (count != st->n)
                return lineno + 1;
            ended = true;
        } else if (prodstate_parse_rec(p, &st->recs[st->n++]) != ERR_OK) {
            return lineno + 1;
        }
        p = nl + 1;
    }
    return ended ? 0 : lineno + 1;
}

int prodstate_decode(char *buf, size_t len, prodstate *st, size_t *bad_line)
{
    memset(st, 0, sizeof *st);
    st->buf = buf;
    size_t bad = prodstate_parse(buf, len, st);
    *bad_line = 0;
    if (!st->recs) {
        prodstate_fini(st);
        return ERR_NOMEM;
    }
    if (bad == 0) {
        qsort(st->recs, st->n, sizeof *st->recs, prodstate_cmp);
        bool twice = false;
        for (size_t i = 1; i < st->n && !twice; i++)
            twice = strcmp(st->recs[i - 1].name, st->recs[i].name) == 0;
        if (!twice)
            return ERR_OK;
    }
    *bad_line = bad; /* 0: well-formed, but a name is given twice */
    prodstate_fini(st);
    return ERR_PARSE;
}

int prodstate_load(const char *dir, prodstate *st)
{
    memset(st, 0, sizeof *st);
    char path[4096];
    fileio_buf file;
    size_t bad = 0;
    snprintf(path, sizeof path, "%s/%s", dir, PRODSTATE_FILE);
    int rc = fileio_read(path, PRODSTATE_MAX_BYTES, &file, NULL, 0);
    if (rc == ERR_RANGE)
        rc = ERR_IO; /* too large to be ours: unreadable, as prodstate.h promises */
    if (rc != ERR_OK) {
        if (rc == ERR_IO)
            log_warn("state file %s unreadable (errno %d); starting without state", path, errno);
        return rc;
    }
    rc = prodstate_decode(file.data, file.len, st, &bad); /* takes file.data */
    if (rc == ERR_PARSE && bad == 0)
        log_warn("state file %s: duplicate entry name; starting without state", path);
    else if (rc == ERR_PARSE)
        log_warn("state file %s:%zu: damaged; starting without state", path, bad);
    return rc;
}

char *prodstate_encode(const prodstate_rec *recs, size_t n, size_t *len)
{
    size_t cap = 64;
    for (size_t i = 0; i < n; i++)
        cap += strlen(recs[i].name) + 48; /* 20 digits, 16 hex, 2 spaces, newline, slack */
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    size_t at = (size_t)snprintf(buf, cap, "%s %d\n", PRODSTATE_HEADER, PRODSTATE_VERSION);
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%" PRId64 " %016" PRIx64 " %s\n",
                               recs[i].last_s, recs[i].digest, recs[i].name);
    at += (size_t)snprintf(buf + at, cap - at, "end %zu\n", n);
    *len = at;
    return buf;
}

static int prodstate_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return ERR_IO;
        p += w;
        len -= (size_t)w;
    }
    return ERR_OK;
}

/* Write the temp file and make it durable before it may replace the real one. */
static int prodstate_write_tmp(const char *tmp, const char *buf, size_t len)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return ERR_IO;
    int rc = prodstate_write_all(fd, buf, len);
    if (rc == ERR_OK && fsync(fd) != 0)
        rc = ERR_IO;
    if (close(fd) != 0 && rc == ERR_OK)
        rc = ERR_IO;
    return rc;
}

int prodstate_save(const char *dir, const prodstate_rec *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strchr(recs[i].name, '\n'))
            return ERR_INVAL;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return ERR_IO;
    size_t len;
    char *buf = prodstate_encode(recs, n, &len);
    if (!buf)
        return ERR_NOMEM;
    char path[4096], tmp[4096 + 8];
    snprintf(path, sizeof path, "%s/%s", dir, PRODSTATE_FILE);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = prodstate_write_tmp(tmp, buf, len);
    free(buf);
    if (rc == ERR_OK && rename(tmp, path) != 0)
        rc = ERR_IO;
    if (rc != ERR_OK) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        return rc;
    }
    /* The rename itself is only durable once the directory entry is on disk. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return ERR_IO;
    rc = fsync(dfd) == 0 ? ERR_OK : ERR_IO;
    close(dfd);
    return rc;
}

int prodstate_lock(const char *dir, int *fd)
{
    char path[4096];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return ERR_IO;
    snprintf(path, sizeof path, "%s/producer.lock", dir);
    int lfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0)
        return ERR_IO;
    if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
        int rc = errno == EWOULDBLOCK ? ERR_EXISTS : ERR_IO;
        close(lfd);
        return rc;
    }
    *fd = lfd;
    return ERR_OK;
}
