/* signcfg: the startup rule producer and worker share for their signing keys: a key file
 * (--signing-key-file / SALVO_SIGNING_KEY_FILE) or SALVO_SIGNING_KEYS, never argv; without any,
 * refuse to start unless --allow-unsigned was given. */
#ifndef SALVO_SIGNCFG_H
#define SALVO_SIGNCFG_H

#include "sign.h"

#include <stdbool.h>

/* Load the ring from key_file when non-NULL and non-empty, else from SALVO_SIGNING_KEYS. The
 * SALVO_SIGNING_KEYS value is wiped and unset in every case, so no child process inherits it.
 * prog ("salvo-worker") prefixes the messages, which name key ids only, never secrets.
 * ERR_OK with *out owning the ring; ERR_OK with *out NULL when no key is configured and
 * allow_unsigned is set (logged as a warning); otherwise the error, logged: ERR_NOTFOUND (no key
 * and no --allow-unsigned), ERR_IO, ERR_PARSE, ERR_NOMEM. Not thread-safe (edits the
 * environment): call from main before threads start. */
int signcfg_load(const char *key_file, bool allow_unsigned, sign_ring **out);

/* Wipe and unset SALVO_SIGNING_KEYS. Not thread-safe. */
void signcfg_scrub_env(void);

#endif
