/* redact: URL passwords replaced by a mask before anything is printed. */
#include "redact.h"

#include "log.h"

#include <stdio.h>
#include <string.h>

/* The password span of the one URL in [s, end): *pw is its first byte, the return its length;
 * 0 when the URL has none. */
static size_t redact_span(const char *s, const char *end, const char **pw)
{
    const char *auth = s;
    for (const char *p = s; p + 3 <= end; p++) {
        if (memcmp(p, "://", 3) == 0) {
            auth = p + 3;
            break;
        }
    }
    const char *at = NULL;
    for (const char *p = auth; p < end; p++) {
        if (*p == '@')
            at = p;
    }
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon)
        return 0;
    *pw = colon + 1;
    return (size_t)(at - *pw);
}

/* Append [s, s+n) to buf at *used, truncating at cap. */
static void redact_put(char *buf, size_t cap, size_t *used, const char *s, size_t n)
{
    size_t room = *used < cap ? cap - 1 - *used : 0;
    size_t take = n < room ? n : room;
    memcpy(buf + *used, s, take);
    *used += take;
    buf[*used] = '\0';
}

void redact_url(const char *url, char *buf, size_t cap)
{
    size_t used = 0;
    if (cap == 0)
        return;
    buf[0] = '\0';
    const char *s = url ? url : "";
    for (;;) {
        const char *comma = strchr(s, ',');
        const char *end = comma ? comma : s + strlen(s);
        const char *pw = NULL;
        size_t n = redact_span(s, end, &pw);
        if (n > 0) {
            redact_put(buf, cap, &used, s, (size_t)(pw - s));
            redact_put(buf, cap, &used, REDACT_MASK, strlen(REDACT_MASK));
            redact_put(buf, cap, &used, pw + n, (size_t)(end - pw - n));
        } else {
            redact_put(buf, cap, &used, s, (size_t)(end - s));
        }
        if (!comma)
            return;
        redact_put(buf, cap, &used, ",", 1);
        s = comma + 1;
    }
}

bool redact_url_has_password(const char *url)
{
    const char *s = url ? url : "";
    for (;;) {
        const char *comma = strchr(s, ',');
        const char *end = comma ? comma : s + strlen(s);
        const char *pw = NULL;
        if (redact_span(s, end, &pw) > 0)
            return true;
        if (!comma)
            return false;
        s = comma + 1;
    }
}

bool redact_warn_argv(int argc, char **argv, const char *flag, const char *env_name)
{
    size_t flen = strlen(flag);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            return false;
        if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, flag, flen) != 0)
            continue;
        const char *v = a[2 + flen] == '=' ? a + 3 + flen : NULL;
        if (!v && a[2 + flen] == '\0' && i + 1 < argc)
            v = argv[i + 1];
        if (v && redact_url_has_password(v)) {
            log_warn("--%s carries a password on the command line, where every local user can "
                     "read it (ps, /proc); set %s in the environment instead",
                     flag, env_name);
            return true;
        }
    }
    return false;
}
