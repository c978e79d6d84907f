/* preconn: precise mode's early TCP connections. For a URL whose host is a numeric address, open
 * a non-blocking connection ahead of the due instant (optionally corked, so that whatever is
 * written waits in the kernel until uncorked). httpcall hands the socket to libcurl. */
#ifndef SALVO_PRECONN_H
#define SALVO_PRECONN_H

#include <stdbool.h>
#include <sys/socket.h>

/* The numeric address and port of an http:// or https:// URL ("http://10.0.0.5:8080/x",
 * "https://[::1]/"); false for host names (resolving here would block) and anything else.
 * Thread-safe. */
bool preconn_addr(const char *url, struct sockaddr_storage *out);
/* Start a non-blocking connect to a, with TCP_NODELAY, and TCP_CORK when cork. A corked socket
 * also closes with a reset (SO_LINGER 0), so a request still held when the process dies is
 * dropped, not sent; it keeps that after the release (its close then leaves no TIME_WAIT).
 * Returns the socket (the caller owns it) or -1. *corked says whether the cork took.
 * Thread-safe. */
int preconn_open(const struct sockaddr_storage *a, bool cork, bool *corked);
/* Whether b (as libcurl passes it) is the same address and port as a. */
bool preconn_same(const struct sockaddr_storage *a, const struct sockaddr *b);
/* Make fd's close a reset (SO_LINGER 0): what it still holds is dropped, not sent, and no
 * TIME_WAIT is left. False when the option did not take. */
bool preconn_reset_on_close(int fd);
/* Let corked data go. */
void preconn_uncork(int fd);

#endif
