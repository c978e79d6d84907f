/* curlconnect: the worker's connect(). Defined in the executable, it is the one every shared
 * library's connect() binds to, libcurl's included. A call curlconnect_mark announced, on an
 * AF_UNIX socket to an internet address, returns 0 at once: that is libcurl 7.x connecting the
 * staging socket it was told is connected (httpcall_stage.c). Every other call goes to the next
 * connect() in lookup order: the C library's, or a sanitizer's interceptor in front of it. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include "curlconnect.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <sys/socket.h>

typedef int (*curlconnect_fn)(int, const struct sockaddr *, socklen_t);

static _Thread_local int curlconnect_marked = -1;
static _Atomic(curlconnect_fn) curlconnect_next;

bool curlconnect_needed(void)
{
    return curl_version_info(CURLVERSION_NOW)->version_num < 0x080000;
}

void curlconnect_mark(int fd)
{
    curlconnect_marked = fd;
}

static bool curlconnect_is_local(int fd)
{
    int domain = 0;
    socklen_t len = sizeof domain;
    return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (fd >= 0 && fd == curlconnect_marked) {
        curlconnect_marked = -1;
        if (addr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) &&
            curlconnect_is_local(fd))
            return 0;
    }
    curlconnect_fn next = atomic_load_explicit(&curlconnect_next, memory_order_acquire);
    if (!next) { /* two threads may both look it up: they find the same function */
        *(void **)&next = dlsym(RTLD_NEXT, "connect");
        if (!next) {
            errno = ENOSYS;
            return -1;
        }
        atomic_store_explicit(&curlconnect_next, next, memory_order_release);
    }
    return next(fd, addr, len);
}
