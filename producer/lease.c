/* lease: the active/standby decision of a producer group over a single-active-consumer queue
 * and a token (design at the top of lease.h; README "High availability"). */
#include "lease.h"

#include "clock.h"
#include "err.h"
#include "log.h"
#include "topology.h"

#include <stdio.h>
#include <string.h>

#define LEASE_RETRY_MAX_NS (30 * CLOCK_NS_PER_SEC)
#define LEASE_TOKEN        "salvo lease token: held unacked by the active producer"

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
    snprintf(l->key, sizeof l->key, "lease.%s", l->group);
}

bool lease_held(const lease *l, uint64_t conn_gen, uint64_t token_gen)
{
    if (!l->enabled)
        return true;
    return conn_gen != 0 && l->joined_gen == conn_gen && token_gen == conn_gen;
}

bool lease_due(const lease *l, uint64_t conn_gen, int64_t now_ns)
{
    return l->enabled && conn_gen != 0 && l->joined_gen != conn_gen && now_ns >= l->next_try_ns;
}

bool lease_needs_token(uint32_t messages, uint32_t consumers)
{
    return messages == 0 && consumers == 0;
}

void lease_note(lease *l, int rc, uint64_t conn_gen, int64_t now_ns)
{
    if (rc == ERR_OK) {
        l->joined_gen = conn_gen;
        l->failures = 0;
        return;
    }
    l->joined_gen = 0;
    int64_t pause = l->retry_ns;
    for (unsigned i = 0; i < l->failures && pause < LEASE_RETRY_MAX_NS; i++)
        pause *= 2;
    l->next_try_ns = now_ns + (pause < LEASE_RETRY_MAX_NS ? pause : LEASE_RETRY_MAX_NS);
    l->failures++;
}

static int lease_publish_token(lease *l, mq *m, const char *by)
{
    mq_hdr hdr = {"x-salvo-producer", by ? by : "salvo-producer", 0};
    mq_msg msg = {.exchange = TOPO_PRODUCER_EXCHANGE,
                  .routing_key = l->key,
                  .body = LEASE_TOKEN,
                  .len = sizeof LEASE_TOKEN - 1,
                  .content_type = "text/plain",
                  .headers = &hdr,
                  .nheaders = 1,
                  .persistent = true};
    return mq_publish(m, MQ_CH_PUBLISH, &msg, NULL);
}

bool lease_renew_due(const lease *l, int64_t got_ns, int64_t now_ns)
{
    return now_ns - got_ns >= (l->renew_ns > 0 ? l->renew_ns : LEASE_RENEW_NS);
}

int lease_renew(lease *l, mq *m, const char *by)
{
    return lease_publish_token(l, m, by);
}

int lease_join(lease *l, mq *m, const char *by, char *err, size_t cap)
{
    uint32_t counts[2] = {0, 0};
    int rc = mq_declare_queue(m, MQ_CH_PUBLISH, l->queue, topo_lease_args, TOPO_PRODUCER_EXCHANGE,
                              l->key, counts, err, cap);
    if (rc == ERR_OK)
        rc = mq_consume(m, l->queue, 2, err, cap); /* room for a renewed token (lease.h) */
    if (rc == ERR_OK && lease_needs_token(counts[0], counts[1])) {
        rc = lease_publish_token(l, m, by);
        if (rc != ERR_OK)
            snprintf(err, cap, "publishing the lease token: connection lost");
        else
            log_notice("no producer of group %s holds or waits for a lease token: published one",
                       l->group);
    }
    l->others = counts[1];
    return rc;
}
