/* trust: the allow-list of publishing broker accounts and the signature check. */
#include "trust.h"

#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int trust_fail(trust_publishers *p, char *err, size_t cap, int code, const char *what,
                      size_t no)
{
    trust_fini(p);
    snprintf(err, cap, "--allowed-publishers entry %zu: %s", no, what);
    return code;
}

static bool trust_name_ok(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    }
    return true;
}

/* Trim blanks around buf[s..e) in place and NUL-terminate it; returns the name's start. */
static char *trust_trim(char *s, char *e)
{
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *e = '\0';
    return s;
}

int trust_parse(const char *csv, trust_publishers *out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    if (!csv || !*csv)
        return ERR_OK;
    out->buf = strdup(csv);
    if (!out->buf)
        return trust_fail(out, err, cap, ERR_NOMEM, "out of memory", 0);
    char *p = out->buf;
    for (size_t no = 1; p; no++) {
        char *comma = strchr(p, ',');
        char *end = comma ? comma : p + strlen(p);
        char *name = trust_trim(p, end);
        p = comma ? comma + 1 : NULL;
        if (!*name)
            continue;
        if (strlen(name) > TRUST_NAME_MAX)
            return trust_fail(out, err, cap, ERR_PARSE, "name longer than 255 bytes", no);
        if (!trust_name_ok(name))
            return trust_fail(out, err, cap, ERR_PARSE, "control character in name", no);
        if (out->n == TRUST_PUBLISHERS_MAX)
            return trust_fail(out, err, cap, ERR_PARSE, "more than 32 names", no);
        out->names[out->n++] = name;
    }
    return ERR_OK;
}

void trust_fini(trust_publishers *p)
{
    if (!p)
        return;
    free(p->buf);
    memset(p, 0, sizeof *p);
}

bool trust_allowed(const trust_publishers *p, const char *user_id, const char *self)
{
    if (!user_id || !*user_id)
        return false;
    if (self && strcmp(user_id, self) == 0)
        return true;
    for (size_t i = 0; p && i < p->n; i++) {
        if (strcmp(user_id, p->names[i]) == 0)
            return true;
    }
    return false;
}

void trust_reason(const char *user_id, char *buf, size_t cap)
{
    char shown[65];
    size_t i = 0;
    if (!user_id || !*user_id) {
        snprintf(buf, cap, "bad-publisher: no user_id");
        return;
    }
    for (; user_id[i] && i < sizeof shown - 1; i++) {
        unsigned char c = (unsigned char)user_id[i];
        shown[i] = c >= 0x20 && c < 0x7f && c != '\'' ? (char)c : '?';
    }
    shown[i] = '\0';
    snprintf(buf, cap, "bad-publisher: user_id '%s' is not allowed", shown);
}

int trust_verify(const sign_ring *ring, const mq_delivery *d, int64_t *due_ms, char *reason,
                 size_t cap)
{
    *due_ms = mq_delivery_header_int(d, SIGN_HDR_DUE, 0);
    return sign_verify(ring, mq_delivery_header(d, SIGN_HDR_KID),
                       mq_delivery_header(d, SIGN_HDR_SIG), d->message_id, *due_ms, d->body, d->len,
                       reason, cap);
}
