/* tgt_rxstamp: kernel receive timestamps of the recording target's sockets (SO_TIMESTAMPING,
 * software RX stamps), so a request is stamped when its bytes reached the host's network stack,
 * not when the target's thread got round to reading them. */
#ifndef SALVO_TGT_RXSTAMP_H
#define SALVO_TGT_RXSTAMP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Ask the kernel to stamp every segment received on fd (CLOCK_REALTIME, taken when the packet
 * enters the receive path: for loopback, inside the sender's transmit). Set on a listening
 * socket, the option is inherited by every accepted socket. Returns ERR_OK, or ERR_IO (errno
 * set) when the kernel refuses. Thread-safe. */
int tgt_rxstamp_enable(int fd);

/* recv(2) of at most cap bytes into buf that also returns, in *rx_ns, the kernel's realtime
 * receive stamp of the latest segment these bytes came from (TCP reports one stamp per read: the
 * newest), or 0 when the read carried none (stamping not enabled, or nothing read). Returns what
 * recv(2) returns, errno set on -1. Never blocks on a non-blocking fd. Thread-safe. */
ssize_t tgt_rxstamp_recv(int fd, void *buf, size_t cap, int64_t *rx_ns);

#endif
