/* log: one logger for every salvo process. One line per event, written to stderr with a single
 * write() so lines from several threads never interleave. Text or JSON lines. */
#ifndef SALVO_LOG_H
#define SALVO_LOG_H

#include <stdarg.h>

typedef enum log_level {
    LOG_ERR = 0,
    LOG_WARN = 1,
    LOG_NOTICE = 2,
    LOG_INFO = 3,
    LOG_DEBUG = 4,
} log_level;

typedef enum log_format {
    LOG_TEXT = 0,
    LOG_JSON = 1,
} log_format;

/* Set level, format and component name ("producer", "worker"). Call once from main before
 * threads start; component is copied. Not thread-safe against concurrent log calls. */
void log_init(log_level level, log_format format, const char *component);

/* Parse "err|warn|notice|info|debug" / "text|json". Return 0, or ERR_INVAL. */
int log_level_parse(const char *s, log_level *out);
int log_format_parse(const char *s, log_format *out);

/* True when an event at this level would be written (cheap; use it to skip costly formatting). */
int log_enabled(log_level level);

/* Write one event. job_id may be NULL. The message is truncated at 4 KiB. Thread-safe. */
void log_msg(log_level level, const char *job_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(log_level level, const char *job_id, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define log_err(...)    log_msg(LOG_ERR, NULL, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_WARN, NULL, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, NULL, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...)  log_msg(LOG_DEBUG, NULL, __VA_ARGS__)

#endif
