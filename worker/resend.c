/* resend: a deadline-ordered list of nacked follow-ups and their backoff schedule. */
#include "resend.h"

#include "clock.h"

#include <stdint.h>

int64_t resend_delay_ms(unsigned nacks)
{
    int64_t d = RESEND_FIRST_MS;
    for (unsigned i = 1; i < nacks && d < RESEND_CAP_MS; i++)
        d *= 2;
    return d < RESEND_CAP_MS ? d : RESEND_CAP_MS;
}

void resend_init(resend *r)
{
    r->head = NULL;
    r->n = 0;
    resend_recovered(r);
}

void resend_fini(resend *r)
{
    settle_free_list(resend_take_all(r));
}

void resend_add(resend *r, settle *s, int64_t now_ns)
{
    if (s->nacks++ == 0)
        s->first_nack_ns = now_ns;
    resend_put(r, s, now_ns + resend_delay_ms(s->nacks) * CLOCK_NS_PER_MS);
}

void resend_put(resend *r, settle *s, int64_t at_ns)
{
    s->resend_at_ns = at_ns;
    /* Equal deadlines keep arrival order, so follow-ups nacked together go out in the order
     * they were first published. The list is as long as the follow-ups refused at once
     * (at most the prefetch), and the walk is rare next to a publish. */
    settle **at = &r->head;
    while (*at && (*at)->resend_at_ns <= s->resend_at_ns)
        at = &(*at)->next;
    s->next = *at;
    *at = s;
    r->n++;
}

bool resend_reopen_due(const resend *r, const settle *s, int64_t now_ns)
{
    return s->nacks > 0 && now_ns - s->first_nack_ns >= RESEND_REOPEN_AFTER_MS * CLOCK_NS_PER_MS &&
           now_ns >= r->reopen_at_ns;
}

void resend_reopened(resend *r, int64_t now_ns)
{
    int64_t gap = RESEND_REOPEN_AFTER_MS;
    for (unsigned i = 0; i < r->reopens && gap < RESEND_REOPEN_CAP_MS; i++)
        gap *= 2;
    if (gap > RESEND_REOPEN_CAP_MS)
        gap = RESEND_REOPEN_CAP_MS;
    r->reopens++;
    r->reopen_at_ns = now_ns + gap * CLOCK_NS_PER_MS;
}

void resend_recovered(resend *r)
{
    r->reopens = 0;
    r->reopen_at_ns = 0;
}

bool resend_notable(settle *s, int64_t now_ns)
{
    bool pow2 = s->nacks != 0 && (s->nacks & (s->nacks - 1)) == 0;
    if (!pow2 && now_ns - s->logged_ns < (int64_t)RESEND_QUIET_MS * CLOCK_NS_PER_MS)
        return false;
    s->logged_ns = now_ns;
    return true;
}

settle *resend_take_due(resend *r, int64_t now_ns)
{
    settle *due = NULL, **tail = &due;
    while (r->head && r->head->resend_at_ns <= now_ns) {
        settle *s = r->head;
        r->head = s->next;
        s->next = NULL;
        *tail = s;
        tail = &s->next;
        r->n--;
    }
    return due;
}

settle *resend_take_all(resend *r)
{
    settle *all = r->head;
    r->head = NULL;
    r->n = 0;
    return all;
}

int64_t resend_next_ns(const resend *r)
{
    return r->head ? r->head->resend_at_ns : INT64_MAX;
}

size_t resend_count(const resend *r)
{
    return r->n;
}
