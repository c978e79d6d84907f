/* log: formatting and the single write() per line. */
#include "log.h"

#include "clock.h"
#include "err.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* 4 KiB message plus room for the prefix and JSON escaping of the worst case we accept. */
#define LOG_MSG_MAX  4096
#define LOG_LINE_MAX (LOG_MSG_MAX * 2 + 512)

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
        memcpy(line + len, "\"}\n", 3);
        return len + 3;
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
