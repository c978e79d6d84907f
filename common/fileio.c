/* fileio: the bounded whole-file reader (contract in fileio.h). */
#include "fileio.h"

#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* First buffer for a file whose size fstat cannot tell (pipe, device, /proc): a page holds any
 * secret or URL list; it doubles from there up to the limit. */
#define FILEIO_CHUNK 4096

/* Fill err with "<path>: <why>" (why NULL: errnum's text), set errno to errnum, return rc. */
static int fileio_fail(int rc, int errnum, const char *path, const char *why, char *err, size_t cap)
{
    char e[128];
    if (!why)
        why = strerror_r(errnum, e, sizeof e) == 0 ? e : "I/O error";
    if (err && cap)
        snprintf(err, cap, "%s: %s", path, why);
    errno = errnum;
    return rc;
}

/* Make room past the len bytes of a full buffer: ERR_RANGE when it already holds limit bytes.
 * The bytes move to a fresh buffer and the old one is wiped: realloc could leave a copy of a
 * secret behind in freed memory. On ERR_NOMEM *buf is untouched. */
static int fileio_grow(char **buf, size_t len, size_t *cap, size_t limit)
{
    if (*cap == limit)
        return ERR_RANGE;
    size_t next = *cap > limit / 2 ? limit : *cap * 2;
    char *p = malloc(next + 1);
    if (!p)
        return ERR_NOMEM;
    memcpy(p, *buf, len);
    explicit_bzero(*buf, len);
    free(*buf);
    *buf = p;
    *cap = next;
    return ERR_OK;
}

/* Read fd to EOF into out->data, starting with room for first bytes and never holding more than
 * limit (= max_bytes + 1, so reaching it means the file is too large). */
static int fileio_slurp(int fd, size_t first, size_t limit, fileio_buf *out)
{
    size_t cap = first, len = 0;
    char *buf = malloc(cap + 1);
    int rc = buf ? ERR_OK : ERR_NOMEM;
    while (rc == ERR_OK) {
        if (len == cap) {
            rc = fileio_grow(&buf, len, &cap, limit);
            continue;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n == 0)
            break;
        if (n < 0 && errno != EINTR)
            rc = ERR_IO;
        if (n > 0)
            len += (size_t)n;
    }
    if (rc != ERR_OK) {
        int keep = errno;
        if (buf)
            explicit_bzero(buf, len);
        free(buf);
        errno = keep;
        return rc;
    }
    buf[len] = '\0';
    out->data = buf;
    out->len = len;
    return ERR_OK;
}

/* Check what fd is, then read it; err and errno as in fileio_read. */
static int fileio_fd(int fd, const char *path, size_t max_bytes, fileio_buf *out, char *err,
                     size_t cap)
{
    char big[64];
    snprintf(big, sizeof big, "larger than %zu bytes", max_bytes);
    size_t limit = max_bytes + 1;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return fileio_fail(ERR_IO, errno, path, NULL, err, cap);
    out->mode = st.st_mode; /* also on a refusal below: the caller may word it by file type */
    if (S_ISDIR(st.st_mode))
        return fileio_fail(ERR_IO, EISDIR, path, "is a directory", err, cap);
    if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size >= limit)
        return fileio_fail(ERR_RANGE, EFBIG, path, big, err, cap);
    size_t first = limit < FILEIO_CHUNK ? limit : FILEIO_CHUNK;
    if (S_ISREG(st.st_mode) && st.st_size > 0)
        first = (size_t)st.st_size + 1; /* the extra byte sees EOF without a second buffer */
    int rc = fileio_slurp(fd, first, limit, out);
    if (rc == ERR_RANGE)
        return fileio_fail(rc, EFBIG, path, big, err, cap);
    if (rc == ERR_NOMEM)
        return fileio_fail(rc, ENOMEM, path, "out of memory", err, cap);
    if (rc != ERR_OK)
        return fileio_fail(rc, errno, path, NULL, err, cap);
    return ERR_OK;
}

int fileio_read(const char *path, size_t max_bytes, fileio_buf *out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fileio_fail(errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno, path, NULL, err, cap);
    int rc = fileio_fd(fd, path, max_bytes, out, err, cap);
    int keep = errno;
    close(fd);
    errno = keep;
    return rc;
}

void fileio_fini(fileio_buf *b)
{
    if (!b)
        return;
    if (b->data)
        explicit_bzero(b->data, b->len);
    free(b->data);
    memset(b, 0, sizeof *b);
}
