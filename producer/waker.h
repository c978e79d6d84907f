/* waker: everything that may wake the producer's single thread, behind one file descriptor.
 * SIGHUP/SIGTERM/SIGINT arrive on a signalfd (they are blocked, so no handler races and no
 * EINTR bookkeeping), the next fire instant on a realtime timerfd armed at an absolute instant
 * with cancel-on-set (a clock step wakes us at once instead of at a stale instant), and both
 * sit in one epoll set whose fd is handed to mq_poll as its wake fd. */
#ifndef SALVO_WAKER_H
#define SALVO_WAKER_H

#include <stdbool.h>
#include <stdint.h>

enum {
    WAKER_HUP = 1 << 0,      /* reload the schedule */
    WAKER_TERM = 1 << 1,     /* SIGTERM or SIGINT: drain and exit */
    WAKER_TIMER = 1 << 2,    /* the armed instant was reached */
    WAKER_CLOCKSET = 1 << 3, /* the realtime clock was set; the timer needs re-arming */
};

typedef struct waker {
    int epfd, sigfd, tfd;
    int64_t armed_ns; /* instant the timer is armed for, 0 when disarmed */
    unsigned pending; /* WAKER_* bits seen and not yet taken */
    bool blocked;     /* waker_init blocked the signals (fini unblocks them) */
} waker;

/* Block the three signals in the calling thread (call before any other thread starts) and
 * create the descriptors. ERR_OK or ERR_IO. Not thread-safe; the waker belongs to one thread. */
int waker_init(waker *w);
/* Close the descriptors and unblock the signals. Safe on a zeroed waker. */
void waker_fini(waker *w);

/* The fd to poll (readable when anything is pending); pass it to mq_poll as wake_fd. */
int waker_fd(const waker *w);

/* Arm the timer for the realtime instant when_ns (INT64_MAX or 0 disarms). Re-arming for the
 * same instant costs nothing. ERR_OK or ERR_IO. */
int waker_arm(waker *w, int64_t when_ns);

/* Read whatever is ready on the signalfd and timerfd into the pending bits, without blocking.
 * Call after waker_fd polled readable. */
void waker_drain(waker *w);

/* Wait up to timeout_ms (-1 = no limit) for the waker fd, then drain. Returns the pending
 * bits (possibly 0 on timeout). Used when there is no broker connection to poll. */
unsigned waker_wait(waker *w, int timeout_ms);

/* Pending bits in mask, cleared from pending. */
unsigned waker_take(waker *w, unsigned mask);
/* Pending bits in mask, left pending. */
unsigned waker_peek(const waker *w, unsigned mask);

#endif
