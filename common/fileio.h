/* fileio: read a whole, bounded file into memory (key files, secrets, state, time zones): one
 * reader, so the size bound, EINTR and short reads, and wiping are handled in one place. */
#ifndef SALVO_FILEIO_H
#define SALVO_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* A file's contents. Embedded by the caller; release with fileio_fini. */
typedef struct fileio_buf {
    char *data;  /* malloc'd, len bytes plus a NUL; the caller may take it and free() it */
    size_t len;  /* bytes read (the file may hold NULs: do not rely on strlen) */
    mode_t mode; /* st_mode from fstat of the open file (0 when it never got that far) */
} fileio_buf;

/* Read the file at path (opened O_CLOEXEC, fstat before the read) into *out, zeroed first.
 * Anything but a directory is read, so callers that accept only regular files check out->mode.
 * A regular file is read into one buffer of its size; pipes and devices until EOF. max_bytes
 * must be below SIZE_MAX / 2. Returns ERR_OK; ERR_NOTFOUND (no such file); ERR_RANGE (more
 * than max_bytes, errno EFBIG); ERR_IO (cannot open, fstat or read, or a directory: errno
 * says which); ERR_NOMEM. On error err (may be NULL) gets "<path>: <reason>", errno is as
 * said and out->data stays NULL, but out->mode is set once fstat succeeded. Blocks on the read (a
 * FIFO opens only once it has a writer). Thread-safe. */
int fileio_read(const char *path, size_t max_bytes, fileio_buf *out, char *err, size_t cap);

/* Wipe the contents (they are often secrets), free them and zero b. Safe on a zeroed or
 * already released buffer and on NULL. */
void fileio_fini(fileio_buf *b);

#endif
