/* tgt_listen: the recording target's listening socket (IPv4, non-blocking, large backlog). */
#ifndef SALVO_TGT_LISTEN_H
#define SALVO_TGT_LISTEN_H

/* Bind addr:port (port 0: an ephemeral port) and listen with `backlog`; with reuseport, set
 * SO_REUSEPORT first so that several sockets (one per serving thread) share the port and the
 * kernel spreads new connections over them. Returns ERR_OK with the
 * non-blocking, close-on-exec socket in *fd and the bound port in *port_out; ERR_INVAL when addr
 * is not an IPv4 address; ERR_IO (errno set, logged) when bind or listen fails. */
int tgt_listen_open(const char *addr, int port, int backlog, int reuseport, int *fd, int *port_out);

#endif
