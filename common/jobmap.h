/* jobmap: a job as a value tree (a jval map with short keys) and back. This is the message
 * schema without its bytes: jobwire.c turns the tree into msgpack and back, and documents every
 * key, type and limit at its top. Keeping the schema here means it never touches msgpack-c. */
#ifndef SALVO_JOBMAP_H
#define SALVO_JOBMAP_H

#include "job.h"
#include "jval.h"

#include <stddef.h>

/* Build the tree for j into *out (overwritten): every field under its wire key ("id", "due",
 * "http": {"m", "url", ...}, "ctx"), without "v", which belongs to jobwire. Only the section
 * for j->kind is written, and "body" only when there is one. ERR_OK, ERR_NOMEM, or ERR_INVAL
 * when j->kind is unknown; on error *out is NIL. j is borrowed. Thread-safe. */
int jobmap_from_job(const job *j, jval *out);

/* Read a tree into *out (fresh from job_init): types, ranges that the C fields need, required
 * keys, defaults for the optional ones; unknown keys are ignored and "v" is not looked at. Limits
 * are left to job_validate. ERR_OK, ERR_NOMEM, or ERR_WIRE_SCHEMA with a detail naming the key
 * ("http.url: is array, want str") in reason; on error *out is left as after job_fini. The body
 * and the context are moved out of tree (left NIL there; the decoder drops the tree next), the
 * rest is copied; tree stays safe to jval_fini either way. Thread-safe. */
int jobmap_to_job(jval *tree, job *out, char *reason, size_t cap);

#endif
