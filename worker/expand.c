/* expand: the worker's tmpl lookup over a job's context, and the walk over its fields. */
#include "expand.h"

#include "err.h"
#include "tmpl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPAND_PREFIX "context."

/* Lookup state: the value rendered for the last placeholder, freed on the next one. */
typedef struct expand_ctx {
    const jval *context;
    char *last;
} expand_ctx;

static int expand_lookup(void *ud, const char *name, const char **val, size_t *len)
{
    expand_ctx *x = ud;
    const jval *v = NULL;
    if (strcmp(name, "context") == 0)
        v = x->context;
    else if (strncmp(name, EXPAND_PREFIX, strlen(EXPAND_PREFIX)) == 0)
        v = jval_path(x->context, name + strlen(EXPAND_PREFIX));
    if (!v)
        return 0;
    free(x->last);
    x->last = jval_to_text(v, len);
    if (!x->last)
        return 0; /* out of memory: leave it as written rather than drop text silently */
    *val = x->last;
    return 1;
}

/* Render *field (len bytes, or strlen when len is NULL) in place; max bounds the result. */
static int expand_field(expand_ctx *x, char **field, size_t *len, size_t max, const char *what,
                        char *detail, size_t cap)
{
    if (!*field || !strstr(*field, "{{"))
        return ERR_OK; /* the common case: nothing to do, nothing allocated */
    size_t in_len = len ? *len : strlen(*field);
    char *out = NULL;
    size_t out_len = 0;
    int rc = tmpl_render(*field, in_len, expand_lookup, x, max, &out, &out_len);
    if (rc == ERR_RANGE)
        snprintf(detail, cap, "%s: longer than %zu bytes", what, max);
    else if (rc != ERR_OK)
        snprintf(detail, cap, "%s: out of memory", what);
    if (rc != ERR_OK)
        return rc;
    free(*field);
    *field = out;
    if (len)
        *len = out_len;
    return ERR_OK;
}

static int expand_http(expand_ctx *x, job_http *h, char *detail, size_t cap)
{
    int rc = expand_field(x, &h->url, NULL, JOB_URL_MAX, "url", detail, cap);
    for (size_t i = 0; rc == ERR_OK && i < h->nheaders; i++) {
        size_t room = JOB_HEADER_MAX - strlen(h->headers[i].name);
        rc = expand_field(x, &h->headers[i].value, NULL, room, "header", detail, cap);
    }
    if (rc == ERR_OK)
        rc = expand_field(x, &h->body, &h->body_len, JOB_BODY_MAX, "body", detail, cap);
    return rc;
}

static int expand_cmd(expand_ctx *x, job_command *c, char *detail, size_t cap)
{
    int rc = ERR_OK;
    for (size_t i = 0; rc == ERR_OK && i < c->argc; i++)
        rc = expand_field(x, &c->argv[i], NULL, JOB_ARG_MAX, "argv", detail, cap);
    for (size_t i = 0; rc == ERR_OK && i < c->nenv; i++) {
        size_t room = JOB_ARG_MAX - strlen(c->env[i].name) - 1;
        rc = expand_field(x, &c->env[i].value, NULL, room, "env", detail, cap);
    }
    return rc;
}

int expand_job(job *j, char *detail, size_t cap)
{
    expand_ctx x = {&j->context, NULL};
    int rc = j->kind == JOB_COMMAND ? expand_cmd(&x, &j->cmd, detail, cap)
                                    : expand_http(&x, &j->http, detail, cap);
    free(x.last);
    return rc;
}
