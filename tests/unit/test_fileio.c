/* test_fileio: the bounded whole-file reader: sizes at and past the limit, missing files,
 * directories, the mode it reports, and pipes and devices whose size fstat does not tell. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "fileio.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/salvo-fileio-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/f", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return rmdir(dir);
}

/* Write n bytes of a repeating pattern (so a misplaced byte shows) to path with mode. */
static void write_pattern(size_t n, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        fputc('a' + (int)(i % 26), f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void assert_pattern(const fileio_buf *b, size_t n)
{
    assert_int_equal(b->len, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(b->data[i], 'a' + (int)(i % 26));
    assert_int_equal(b->data[n], '\0');
}

/* Sizes around the limit: under, exact and one past (refused before any read). */
static void test_sizes(void **state)
{
    (void)state;
    static const struct {
        size_t size, max;
        int rc;
    } rows[] = {
        {0, 16, ERR_OK},      {1, 16, ERR_OK},         {16, 16, ERR_OK},
        {17, 16, ERR_RANGE},  {0, 0, ERR_OK},          {1, 0, ERR_RANGE},
        {5000, 5000, ERR_OK}, {5001, 5000, ERR_RANGE}, {70000, 1 << 20, ERR_OK},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        write_pattern(rows[i].size, 0600);
        fileio_buf b;
        char err[256] = "";
        errno = 0;
        assert_int_equal(fileio_read(path, rows[i].max, &b, err, sizeof err), rows[i].rc);
        if (rows[i].rc == ERR_OK) {
            assert_pattern(&b, rows[i].size);
        } else {
            char want[256];
            snprintf(want, sizeof want, "%s: larger than %zu bytes", path, rows[i].max);
            assert_string_equal(err, want);
            assert_int_equal(errno, EFBIG);
            assert_null(b.data);
        }
        fileio_fini(&b);
        assert_null(b.data);
    }
}

static void test_mode_reported(void **state)
{
    (void)state;
    static const mode_t modes[] = {0600, 0640, 0444};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        write_pattern(3, modes[i]);
        fileio_buf b;
        assert_int_equal(fileio_read(path, 64, &b, NULL, 0), ERR_OK);
        assert_true(S_ISREG(b.mode));
        assert_int_equal(b.mode & 07777, modes[i]);
        fileio_fini(&b);
    }
}

static void test_missing_and_directory(void **state)
{
    (void)state;
    fileio_buf b;
    char err[256], want[256];
    assert_int_equal(fileio_read(path, 64, &b, err, sizeof err), ERR_NOTFOUND);
    assert_int_equal(errno, ENOENT);
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    assert_string_equal(err, want);
    assert_null(b.data);
    assert_int_equal(fileio_read(dir, 64, &b, err, sizeof err), ERR_IO);
    assert_int_equal(errno, EISDIR);
    snprintf(want, sizeof want, "%s: is a directory", dir);
    assert_string_equal(err, want);
    assert_null(b.data);
    assert_true(S_ISDIR(b.mode)); /* reported even on refusal, so callers can word it */
    /* Unreadable: only meaningful when not root (root reads a 0000 file). */
    write_pattern(3, 0000);
    int rc = fileio_read(path, 64, &b, err, sizeof err);
    assert_int_equal(rc, geteuid() == 0 ? ERR_OK : ERR_IO);
    if (rc == ERR_IO)
        assert_int_equal(errno, EACCES);
    fileio_fini(&b);
}

/* A pipe has no size: read until EOF, growing past the first chunk, with the exact bytes. */
static void test_pipe(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 10, 4096, 4097, 20000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        char *text = malloc(sizes[i] + 1);
        assert_non_null(text);
        for (size_t k = 0; k < sizes[i]; k++)
            text[k] = 'a' + (char)(k % 26);
        assert_int_equal(write(fds[1], text, sizes[i]), (ssize_t)sizes[i]); /* < pipe buffer */
        close(fds[1]);
        char name[64];
        snprintf(name, sizeof name, "/proc/self/fd/%d", fds[0]);
        fileio_buf b;
        assert_int_equal(fileio_read(name, 20000, &b, NULL, 0), ERR_OK);
        assert_true(S_ISFIFO(b.mode));
        assert_pattern(&b, sizes[i]);
        fileio_fini(&b);
        close(fds[0]);
        free(text);
    }
}

/* The trickle writer: TRICKLE_CHUNKS pieces with a pause between, each followed by a signal to
 * the reader, so its reads come back short and some are interrupted (EINTR, no SA_RESTART). */
#define TRICKLE_CHUNKS 40
#define TRICKLE_BYTES  (TRICKLE_CHUNKS * 301)

typedef struct trickle {
    int fd;
    pthread_t reader;
} trickle;

static void on_signal(int sig)
{
    (void)sig;
}

static void *trickle_write(void *arg)
{
    const trickle *t = arg;
    char chunk[301];
    for (size_t c = 0; c < TRICKLE_CHUNKS; c++) {
        for (size_t k = 0; k < sizeof chunk; k++)
            chunk[k] = 'a' + (char)((c * sizeof chunk + k) % 26);
        if (write(t->fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk)
            break; /* the reader then sees fewer bytes and the test fails */
        nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
        pthread_kill(t->reader, SIGUSR1);
    }
    close(t->fd);
    return NULL;
}

static void test_short_and_interrupted_reads(void **state)
{
    (void)state;
    struct sigaction sa = {.sa_handler = on_signal}, old; /* no SA_RESTART: read gets EINTR */
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    trickle t = {.fd = fds[1], .reader = pthread_self()};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, trickle_write, &t), 0);
    char name[64];
    snprintf(name, sizeof name, "/proc/self/fd/%d", fds[0]);
    fileio_buf b;
    int rc = fileio_read(name, TRICKLE_BYTES, &b, NULL, 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    close(fds[0]);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
    assert_int_equal(rc, ERR_OK);
    assert_pattern(&b, TRICKLE_BYTES);
    fileio_fini(&b);
}

/* A device that never ends is cut at the limit and refused, not read forever. */
static void test_endless_device(void **state)
{
    (void)state;
    fileio_buf b;
    char err[256];
    assert_int_equal(fileio_read("/dev/zero", 10000, &b, err, sizeof err), ERR_RANGE);
    assert_string_equal(err, "/dev/zero: larger than 10000 bytes");
    assert_null(b.data);
    assert_int_equal(fileio_read("/dev/null", 10000, &b, err, sizeof err), ERR_OK);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_true(S_ISCHR(b.mode));
    fileio_fini(&b);
    fileio_fini(&b); /* twice is safe, and so is NULL */
    fileio_fini(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_directory, setup, teardown),
        cmocka_unit_test(test_pipe),
        cmocka_unit_test(test_short_and_interrupted_reads),
        cmocka_unit_test(test_endless_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
