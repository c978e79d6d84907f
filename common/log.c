/* log: formatting and the single write() per line. */
#include "log.h"

#include "clock.h"
#include "err.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* 4 KiB message plus room for the prefix and JSON escaping of the worst case we accept. */
#define LOG_MSG_MAX  4096
#define LOG_LINE_MAX (LOG_MSG_MAX * 2 + 512)
/* JSON mode: key=value pairs of a message copied as fields, and the longest value copied. */
#define LOG_FIELDS_MAX 16
#define LOG_FIELD_MAX  512
#define LOG_KEY_MAX    64

static log_level log_cur_level = LOG_INFO;
static log_format log_cur_format = LOG_TEXT;
static char log_component[32] = "salvo";

static const char *const log_level_names[] = {"err", "warn", "notice", "info", "debug"};

void log_init(log_level level, log_format format, const char *component)
{
    log_cur_level = level;
    log_cur_format = format;
    if (component)
        snprintf(log_component, sizeof log_component, "%s", component);
}

int log_level_parse(const char *s, log_level *out)
{
    for (int i = 0; i <= LOG_DEBUG; i++) {
        if (strcmp(s, log_level_names[i]) == 0) {
            *out = (log_level)i;
            return ERR_OK;
        }
    }
    if (strcmp(s, "error") == 0 || strcmp(s, "warning") == 0) {
        *out = s[0] == 'e' ? LOG_ERR : LOG_WARN;
        return ERR_OK;
    }
    return ERR_INVAL;
}

int log_format_parse(const char *s, log_format *out)
{
    if (strcmp(s, "text") == 0)
        *out = LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = LOG_JSON;
    else
        return ERR_INVAL;
    return ERR_OK;
}

int log_enabled(log_level level)
{
    return level <= log_cur_level;
}

/* Append s to buf[*len..cap) escaped for a JSON string; stops silently when full. */
static void log_json_escape(char *buf, size_t *len, size_t cap, const char *s)
{
    for (; *s && *len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[(*len)++] = '\\';
            buf[(*len)++] = (char)c;
        } else if (c < 0x20) {
            *len += (size_t)snprintf(buf + *len, cap - *len, "\\u%04x", c);
        } else {
            buf[(*len)++] = (char)c;
        }
    }
}

/* Keys a message's key=value pair may not take: the line's own fields. */
static bool log_reserved(const char *key, size_t n)
{
    static const char *const own[] = {"ts", "level", "comp", "job", "msg"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        if (strlen(own[i]) == n && memcmp(own[i], key, n) == 0)
            return true;
    }
    return false;
}

/* True when v[0..n) is a JSON number salvo writes: -?digits(.digits)?. */
static bool log_is_number(const char *v, size_t n)
{
    size_t i = v[0] == '-', digits = 0, dot = 0;
    for (; i < n; i++) {
        if (v[i] >= '0' && v[i] <= '9')
            digits++;
        else if (v[i] == '.' && digits > 0 && dot++ == 0)
            continue;
        else
            return false;
    }
    return digits > 0 && v[n - 1] != '.';
}

/* Append ,"key":value for one pair; a number stays a number, "N/M" (attempt=2/3) becomes
 * key=N and key_max=M, anything else a string. */
static void log_json_pair(char *buf, size_t *len, size_t cap, const char *k, size_t kn,
                          const char *v, size_t vn)
{
    const char *slash = memchr(v, '/', vn);
    if (slash && slash > v && log_is_number(v, (size_t)(slash - v)) &&
        log_is_number(slash + 1, vn - (size_t)(slash - v) - 1)) {
        size_t an = (size_t)(slash - v);
        *len += (size_t)snprintf(buf + *len, cap - *len, ",\"%.*s\":%.*s,\"%.*s_max\":%.*s",
                                 (int)kn, k, (int)an, v, (int)kn, k, (int)(vn - an - 1), slash + 1);
    } else if (log_is_number(v, vn)) {
        *len += (size_t)snprintf(buf + *len, cap - *len, ",\"%.*s\":%.*s", (int)kn, k, (int)vn, v);
    } else {
        char val[LOG_FIELD_MAX + 1];
        snprintf(val, sizeof val, "%.*s", (int)vn, v);
        *len += (size_t)snprintf(buf + *len, cap - *len, ",\"%.*s\":\"", (int)kn, k);
        log_json_escape(buf, len, cap - 2, val);
        buf[(*len)++] = '"';
    }
    if (*len >= cap)
        *len = cap - 1;
}

/* Every key=value word of msg (key [a-z_][a-z0-9_]*, value up to the next space, trailing
 * ':' ',' ';' dropped) becomes a JSON field too, so collectors can filter on schedule,
 * attempt, lateness_ms or status without parsing msg. The first of a repeated key wins. */
static void log_json_fields(char *buf, size_t *len, size_t cap, const char *msg)
{
    const char *seen[LOG_FIELDS_MAX];
    size_t seen_n[LOG_FIELDS_MAX], nseen = 0;
    for (const char *p = msg; *p && nseen < LOG_FIELDS_MAX && *len + LOG_FIELD_MAX * 2 < cap;) {
        size_t kn = 0;
        while ((p[kn] >= 'a' && p[kn] <= 'z') || p[kn] == '_' ||
               (kn > 0 && p[kn] >= '0' && p[kn] <= '9'))
            kn++;
        if (kn == 0 || kn > LOG_KEY_MAX || p[kn] != '=') {
            p += strcspn(p, " ");
            p += strspn(p, " ");
            continue;
        }
        const char *v = p + kn + 1;
        size_t vn = strcspn(v, " ");
        const char *next = v + vn;
        while (vn > 0 && strchr(":,;", v[vn - 1]))
            vn--;
        bool dup = log_reserved(p, kn);
        for (size_t i = 0; i < nseen && !dup; i++)
            dup = seen_n[i] == kn && memcmp(seen[i], p, kn) == 0;
        if (vn > 0 && vn <= LOG_FIELD_MAX && !dup) {
            log_json_pair(buf, len, cap, p, kn, v, vn);
            seen[nseen] = p, seen_n[nseen++] = kn;
        }
        p = next + strspn(next, " ");
    }
}

static size_t log_format_line(char *line, log_level level, const char *job_id, const char *msg)
{
    char ts[40];
    clock_format_iso(clock_real_ns(), 3, ts, sizeof ts);
    size_t len = 0;
    if (log_cur_format == LOG_JSON) {
        len =
            (size_t)snprintf(line, LOG_LINE_MAX, "{\"ts\":\"%s\",\"level\":\"%s\",\"comp\":\"%s\"",
                             ts, log_level_names[level], log_component);
        if (job_id) {
            memcpy(line + len, ",\"job\":\"", 8);
            len += 8;
            log_json_escape(line, &len, LOG_LINE_MAX - 16, job_id);
            line[len++] = '"';
        }
        memcpy(line + len, ",\"msg\":\"", 8);
        len += 8;
        log_json_escape(line, &len, LOG_LINE_MAX - 8, msg);
        line[len++] = '"';
        log_json_fields(line, &len, LOG_LINE_MAX - 8, msg);
        memcpy(line + len, "}\n", 2);
        return len + 2;
    }
    len = (size_t)snprintf(line, LOG_LINE_MAX, "%s %-6s %s%s%s %s\n", ts, log_level_names[level],
                           log_component, job_id ? " job=" : "", job_id ? job_id : "", msg);
    return len < LOG_LINE_MAX ? len : LOG_LINE_MAX - 1;
}

void log_vmsg(log_level level, const char *job_id, const char *fmt, va_list ap)
{
    if (!log_enabled(level))
        return;
    char msg[LOG_MSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    char line[LOG_LINE_MAX];
    size_t len = log_format_line(line, level, job_id, msg);
    /* One write per line: stderr is unbuffered and pipes keep writes <= PIPE_BUF atomic. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void log_msg(log_level level, const char *job_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, job_id, fmt, ap);
    va_end(ap);
}
