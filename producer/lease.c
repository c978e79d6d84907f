/* lease: the active/standby decision of a producer group over an exclusive queue (design at the
 * top of lease.h; README "High availability"). */
#include "lease.h"

#include "clock.h"
#include "err.h"
#include "log.h"
#include "topology.h"

#include <stdio.h>
#include <string.h>

int lease_check_group(const char *group)
{
    size_t n = group ? strlen(group) : 0;
    if (n == 0 || n > LEASE_GROUP_MAX)
        return ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        char ch = group[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
        if (!ok)
            return ERR_INVAL;
    }
    return ERR_OK;
}

void lease_init(lease *l, const char *group, int64_t retry_ns)
{
    memset(l, 0, sizeof *l);
    l->retry_ns = retry_ns > 0 ? retry_ns : CLOCK_NS_PER_SEC;
    if (!group || !*group)
        return;
    l->enabled = true;
    snprintf(l->group, sizeof l->group, "%s", group);
    snprintf(l->queue, sizeof l->queue, "%s%s", TOPO_LEASE_PREFIX, l->group);
}

bool lease_held(const lease *l, uint64_t conn_gen)
{
    if (!l->enabled)
        return true;
    return conn_gen != 0 && l->gen == conn_gen;
}

bool lease_due(const lease *l, uint64_t conn_gen, int64_t now_ns)
{
    return l->enabled && conn_gen != 0 && l->gen != conn_gen && now_ns >= l->next_try_ns;
}

int lease_wait_ms(const lease *l, int64_t now_ns)
{
    int64_t left = l->next_try_ns - now_ns;
    if (left <= 0)
        return 0;
    return (int)((left + CLOCK_NS_PER_MS - 1) / CLOCK_NS_PER_MS);
}

void lease_note(lease *l, int rc, uint64_t conn_gen, int64_t now_ns)
{
    if (rc == ERR_OK) {
        l->gen = conn_gen;
        l->refusals = 0;
        return;
    }
    l->gen = 0;
    l->next_try_ns = now_ns + l->retry_ns;
    if (rc == ERR_EXISTS)
        l->refusals++;
}

int lease_try(lease *l, mq *m, int64_t now_ns, char *err, size_t cap)
{
    uint64_t gen = mq_is_open(m) ? mq_generation(m) : 0;
    if (lease_held(l, gen))
        return ERR_OK;
    if (!lease_due(l, gen, now_ns))
        return ERR_INTR;
    int rc = mq_declare_exclusive(m, MQ_CH_PUBLISH, l->queue, err, cap);
    lease_note(l, rc, gen, now_ns);
    if (rc == ERR_EXISTS && l->refusals == 1)
        log_notice("standing by: lease %s is held by another producer of group %s", l->queue,
                   l->group);
    return rc;
}
