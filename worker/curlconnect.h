/* curlconnect: makes libcurl before 8.0.0 leave a socket alone that salvo's sockopt callback
 * reported as connected. Those versions call connect() on it anyway (upstream fixed this in
 * 8.0.0, "cf-socket: if socket is already connected, return CURLE_OK"); Debian 12 ships 7.88.
 * The worker therefore supplies connect() itself; see curlconnect.c. */
#ifndef SALVO_CURLCONNECT_H
#define SALVO_CURLCONNECT_H

#include <stdbool.h>

/* Whether the libcurl in use calls connect() on an already-connected socket (before 8.0.0). */
bool curlconnect_needed(void);
/* The next connect() on this thread, when it is on fd, fd is an AF_UNIX socket and the address
 * an internet one (the socket libcurl was handed, the address of its URL), returns 0 without
 * doing anything, as libcurl 8 skips that call. Such a call could only fail if done for real,
 * so a mark left unused changes nothing else. */
void curlconnect_mark(int fd);

#endif
