/* redact: secrets kept out of what salvo prints. Every URL that reaches a log line, an error
 * message or a result goes through redact_url first, so a broker password given in
 * SALVO_AMQP_URL ("amqp://user:secret@host/") is shown as "amqp://user:***@host/". */
#ifndef SALVO_REDACT_H
#define SALVO_REDACT_H

#include <stdbool.h>
#include <stddef.h>

/* What stands in for a removed password. */
#define REDACT_MASK "***"

/* Copy url into buf (always NUL-terminated, truncated to cap) with the password of every URL in
 * it replaced by REDACT_MASK. url may be a comma-separated list (as --amqp-url takes). The
 * password is everything between the first ':' after "scheme://" and the LAST '@' of that URL,
 * so a password holding '@', '/', '?' or '#' unencoded is still hidden whole; a URL without a
 * user name or without a password is copied unchanged. A path holding '@' may hide more than
 * the password, never less. Thread-safe; url and buf are borrowed and must not overlap. */
void redact_url(const char *url, char *buf, size_t cap);

/* Whether any URL of the (comma-separated) list carries a password. Thread-safe. */
bool redact_url_has_password(const char *url);

/* Warn (log_warn) when the command line gave --FLAG with a URL that carries a password: argv is
 * readable by every local user (/proc/PID/cmdline, ps). The warning names the flag and env_name
 * (the documented way), never the value. Returns whether it warned. Call from main after
 * log_init. */
bool redact_warn_argv(int argc, char **argv, const char *flag, const char *env_name);

#endif
