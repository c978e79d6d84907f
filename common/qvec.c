/* qvec: room at the end of an array used as a queue. */
#include "qvec.h"

#include "err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int qvec_room(void **v, size_t *head, size_t *n, size_t *cap, size_t elem, size_t first_cap)
{
    if (*head > 0 && *n == *cap) {
        /* Reclaim the consumed front before growing. */
        memmove(*v, (char *)*v + *head * elem, (*n - *head) * elem);
        *n -= *head;
        *head = 0;
    }
    if (*n < *cap)
        return ERR_OK;
    size_t ncap = *cap ? *cap * 2 : first_cap;
    if (ncap > SIZE_MAX / elem)
        return ERR_NOMEM;
    void *nv = realloc(*v, ncap * elem);
    if (!nv)
        return ERR_NOMEM;
    *v = nv;
    *cap = ncap;
    return ERR_OK;
}
