/* qvec: room at the end of an array used as a queue (live entries v[head .. n)), the growth
 * step shared by the worker's ack and confirm trackers. */
#ifndef SALVO_QVEC_H
#define SALVO_QVEC_H

#include <stddef.h>

/* Make room for one more entry at v[*n]: first by moving the live entries down over the
 * consumed front (*head > 0), else by doubling the array (first_cap entries the first time).
 * *v, *head, *n and *cap are updated. Returns ERR_OK, or ERR_NOMEM with everything unchanged.
 * Not thread-safe; the caller owns *v. */
int qvec_room(void **v, size_t *head, size_t *n, size_t *cap, size_t elem, size_t first_cap);

#endif
