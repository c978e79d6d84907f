/* tgt_rxstamp: SO_TIMESTAMPING software receive stamps read through recvmsg control messages. */
#include "tgt_rxstamp.h"

#include "clock.h"
#include "err.h"

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

int tgt_rxstamp_enable(int fd)
{
    /* RX_SOFTWARE generates the stamps, SOFTWARE reports them; no hardware stamps on loopback. */
    int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
    return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) == 0 ? ERR_OK : ERR_IO;
}

/* The software stamp in an SCM_TIMESTAMPING message (ts[0]; ts[2] would be hardware). */
static int64_t tgt_rxstamp_of(struct msghdr *mh)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPING ||
            cm->cmsg_len < CMSG_LEN(sizeof(struct scm_timestamping)))
            continue;
        struct scm_timestamping ts;
        memcpy(&ts, CMSG_DATA(cm), sizeof ts);
        return (int64_t)ts.ts[0].tv_sec * CLOCK_NS_PER_SEC + ts.ts[0].tv_nsec;
    }
    return 0;
}

ssize_t tgt_rxstamp_recv(int fd, void *buf, size_t cap, int64_t *rx_ns)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct scm_timestamping))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = cap};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    *rx_ns = 0;
    ssize_t r = recvmsg(fd, &mh, 0);
    if (r > 0)
        *rx_ns = tgt_rxstamp_of(&mh);
    return r;
}
