/* tgt_listen: the recording target's listening socket. */
#include "tgt_listen.h"

#include "err.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int tgt_listen_open(const char *addr, int port, int backlog, int reuseport, int *fd, int *port_out)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        log_err("--bind %s: not an IPv4 address", addr);
        return ERR_INVAL;
    }
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0)
        goto fail;
    /* A restarted target must get its port back while old connections sit in TIME_WAIT. */
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport && setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        goto fail;
    if (bind(s, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s, backlog) != 0)
        goto fail;
    socklen_t len = sizeof sa;
    if (getsockname(s, (struct sockaddr *)&sa, &len) != 0)
        goto fail;
    *fd = s;
    *port_out = ntohs(sa.sin_port);
    return ERR_OK;
fail:;
    int saved = errno;
    log_err("cannot listen on %s:%d: errno %d", addr, port, saved);
    if (s >= 0)
        close(s);
    errno = saved;
    return ERR_IO;
}
