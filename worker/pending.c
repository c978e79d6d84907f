/* pending: a sorted array with a moving head; confirms almost always arrive for the head. */
#include "pending.h"

#include "err.h"
#include "qvec.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void pending_init(pending *p)
{
    memset(p, 0, sizeof *p);
}

void pending_fini(pending *p)
{
    settle_free_list(pending_take_all(p));
    free(p->v);
    memset(p, 0, sizeof *p);
}

int pending_add(pending *p, uint64_t seq, settle *s)
{
    void *v = p->v;
    int rc = qvec_room(&v, &p->head, &p->n, &p->cap, sizeof *p->v, 64);
    p->v = v;
    if (rc != ERR_OK)
        return rc;
    p->v[p->n++] = (pending_ent){seq, s};
    return ERR_OK;
}

static void pending_append(settle **head, settle **tail, settle *s)
{
    s->next = NULL;
    if (*tail)
        (*tail)->next = s;
    else
        *head = s;
    *tail = s;
}

/* Index of seq in the live range, or p->n when absent (binary search: seqs increase). */
static size_t pending_find(const pending *p, uint64_t seq)
{
    _Static_assert(offsetof(pending_ent, seq) == 0, "qvec_find_u64 reads the leading key");
    return qvec_find_u64(p->v, p->head, p->n, sizeof *p->v, seq);
}

settle *pending_confirm(pending *p, uint64_t tag, bool multiple)
{
    settle *head = NULL, *tail = NULL;
    if (multiple) {
        while (p->head < p->n && p->v[p->head].seq <= tag)
            pending_append(&head, &tail, p->v[p->head++].s);
    } else {
        size_t i = pending_find(p, tag);
        if (i == p->n)
            return NULL;
        pending_append(&head, &tail, p->v[i].s);
        memmove(p->v + i, p->v + i + 1, (p->n - i - 1) * sizeof *p->v);
        p->n--;
    }
    if (p->head == p->n)
        p->head = p->n = 0;
    return head;
}

bool pending_mark_returned(pending *p, const char *id)
{
    for (size_t i = p->head; id && i < p->n; i++) {
        settle *s = p->v[i].s;
        if (!s->returned && s->id && strcmp(s->id, id) == 0) {
            s->returned = true;
            return true;
        }
    }
    return false;
}

settle *pending_take_all(pending *p)
{
    settle *head = NULL, *tail = NULL;
    for (size_t i = p->head; i < p->n; i++)
        pending_append(&head, &tail, p->v[i].s);
    p->head = p->n = 0;
    return head;
}

size_t pending_count(const pending *p)
{
    return p->n - p->head;
}
