/* waker: signalfd + realtime timerfd (cancel-on-set) + one epoll fd over both. */
#include "waker.h"

#include "clock.h"
#include "err.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

static void waker_sigset(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

static int waker_add(int epfd, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? ERR_OK : ERR_IO;
}

int waker_init(waker *w)
{
    memset(w, 0, sizeof *w);
    w->epfd = w->sigfd = w->tfd = -1;
    sigset_t set;
    waker_sigset(&set);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return ERR_IO;
    w->blocked = true;
    w->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    w->tfd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->sigfd < 0 || w->tfd < 0 || w->epfd < 0 || waker_add(w->epfd, w->sigfd) != ERR_OK ||
        waker_add(w->epfd, w->tfd) != ERR_OK) {
        waker_fini(w);
        return ERR_IO;
    }
    return ERR_OK;
}

void waker_fini(waker *w)
{
    /* A zeroed waker was never initialised: its fds of 0 are not ours to close. */
    if (!w || !w->blocked)
        return;
    int fds[3] = {w->epfd, w->sigfd, w->tfd};
    for (int i = 0; i < 3; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
    sigset_t set;
    waker_sigset(&set);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    memset(w, 0, sizeof *w);
}

int waker_fd(const waker *w)
{
    return w->epfd;
}

int waker_arm(waker *w, int64_t when_ns)
{
    if (when_ns == INT64_MAX)
        when_ns = 0;
    if (when_ns == w->armed_ns)
        return ERR_OK;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = when_ns / CLOCK_NS_PER_SEC;
    its.it_value.tv_nsec = when_ns % CLOCK_NS_PER_SEC;
    /* An instant already past fires at once; tv 0 would disarm, so use 1 ns instead. */
    if (when_ns != 0 && its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1;
    int flags = TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET;
    if (timerfd_settime(w->tfd, flags, &its, NULL) != 0)
        return ERR_IO;
    w->armed_ns = when_ns;
    return ERR_OK;
}

static void waker_drain_signals(waker *w)
{
    struct signalfd_siginfo si;
    while (read(w->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP)
            w->pending |= WAKER_HUP;
        else
            w->pending |= WAKER_TERM;
    }
}

void waker_drain(waker *w)
{
    waker_drain_signals(w);
    uint64_t expirations;
    ssize_t r = read(w->tfd, &expirations, sizeof expirations);
    if (r == (ssize_t)sizeof expirations) {
        w->pending |= WAKER_TIMER;
        w->armed_ns = 0; /* one-shot: it is disarmed now */
    } else if (r < 0 && errno == ECANCELED) {
        /* The clock was set: the armed instant means something else now. */
        w->pending |= WAKER_CLOCKSET;
        w->armed_ns = 0;
    }
}

unsigned waker_wait(waker *w, int timeout_ms)
{
    struct epoll_event ev[2];
    int n = epoll_wait(w->epfd, ev, 2, timeout_ms);
    if (n > 0)
        waker_drain(w);
    return w->pending;
}

unsigned waker_take(waker *w, unsigned mask)
{
    unsigned got = w->pending & mask;
    w->pending &= ~mask;
    return got;
}

unsigned waker_peek(const waker *w, unsigned mask)
{
    return w->pending & mask;
}
