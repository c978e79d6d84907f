/* expand: fills {{context.key}} placeholders of one job from that job's own context, in its URL,
 * header values and body (HTTP) or its arguments and environment values (command). Paths are
 * dotted ("context.store.id", array items by number); {{context}} alone is the whole context as
 * JSON. A placeholder naming a missing key is left as written, so a typo shows in the request. */
#ifndef SALVO_EXPAND_H
#define SALVO_EXPAND_H

#include "job.h"

#include <stddef.h>

/* Expand every templated field of j in place (j keeps owning the new strings). ERR_OK, ERR_NOMEM,
 * or ERR_RANGE when a field would outgrow its job.h limit, with detail naming the field
 * ("url: longer than 8192 bytes"). On failure j is still a valid job (some fields may be
 * expanded). Thread-safe; touches nothing but j. */
int expand_job(job *j, char *detail, size_t cap);

#endif
