/* signcfg: where the daemons' signing keys come from, and the refusal to run without one. */
#include "signcfg.h"

#include "err.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

void signcfg_scrub_env(void)
{
    char *keys = getenv(SIGN_ENV_KEYS);
    if (!keys)
        return;
    /* volatile: a plain memset before unsetenv may be optimised away as a dead store. */
    for (volatile char *p = keys; *p; p++)
        *p = '\0';
    unsetenv(SIGN_ENV_KEYS);
}

static void signcfg_log_ring(const sign_ring *r)
{
    if (sign_ring_count(r) > 1)
        log_notice("signing key '%s' (also verifying '%s')", sign_ring_kid(r, 0),
                   sign_ring_kid(r, 1));
    else
        log_notice("signing key '%s'", sign_ring_kid(r, 0));
}

int signcfg_load(const char *key_file, bool allow_unsigned, sign_ring **out)
{
    char err[512] = "";
    int rc;
    *out = NULL;
    if (key_file && *key_file)
        rc = sign_ring_load(key_file, out, err, sizeof err);
    else
        rc = sign_ring_from_env(out, err, sizeof err);
    signcfg_scrub_env();
    if (rc == ERR_OK) {
        signcfg_log_ring(*out);
        return ERR_OK;
    }
    if (rc == ERR_NOTFOUND && allow_unsigned) {
        log_warn("no signing key: jobs are NOT signed or verified (--allow-unsigned)");
        return ERR_OK;
    }
    if (rc == ERR_NOTFOUND)
        log_err("no signing key: set %s (a file made by 'salvo-producer keygen') or %s, or run "
                "with --allow-unsigned",
                SIGN_ENV_FILE, SIGN_ENV_KEYS);
    else
        log_err("signing key: %s", err);
    return rc;
}
