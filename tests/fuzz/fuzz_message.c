/* fuzz_message: libFuzzer target over the worker's whole receive path, in the worker's order:
 * size cap, signature check, jobwire_prevalidate, jobwire_decode, job_validate; then round-trip
 * checks on whatever decodes. Build and run with tests/fuzz/run-fuzz.
 *
 * Input layout (so the fuzzer can both forge signatures and reach the decoder):
 *   byte 0       mode % 4: 0 = sign correctly with key "fz1" (the ring's signing key)
 *                          1 = sign correctly with "fz2" (the verify-only key: rotation)
 *                          2 = key id and signature come from the input (forgery)
 *                          3 = no signature at all
 *   byte 1       n, then n bytes of message id
 *   8 bytes      due_ms, big-endian two's complement
 *   mode 2 only: k, then k bytes of key id, then 64 bytes of signature text
 *   the rest     the message body
 * Truncated headers are ignored. Invariants that abort (a finding) rather than return:
 *   - a correctly signed message verifies; an unsigned one fails as "missing";
 *   - what the pre-validator rejects, the decoder rejects too;
 *   - a decoded job passes job_validate, re-encodes, and decode(encode(job)) re-encodes to the
 *     very same bytes (the encoder is deterministic), and so does its job_clone. */
#include "err.h"
#include "job.h"
#include "jobwire.h"
#include "sign.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Test keys, not secrets: "salvo-fuzz-key-one-0123456789ab" and "salvo-fuzz-key-two-01234". */
#define FUZZ_KEY1 "fz1:c2Fsdm8tZnV6ei1rZXktb25lLTAxMjM0NTY3ODlhYg=="
#define FUZZ_KEY2 "fz2:c2Fsdm8tZnV6ei1rZXktdHdvLTAxMjM0"

static sign_ring *fuzz_ring;     /* fz1 signs, fz2 verifies: what a rotating worker holds */
static sign_ring *fuzz_ring_fz2; /* a producer that already signs with fz2 */

typedef struct fuzz_msg {
    int mode;
    char id[256];
    int64_t due;
    char kid[256];
    char sig[SIGN_HEX_LEN + 1];
    const uint8_t *body;
    size_t len;
} fuzz_msg;

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void fuzz_init(void)
{
    char err[256];
    if (fuzz_ring)
        return;
    if (sign_ring_parse(FUZZ_KEY1 "," FUZZ_KEY2, "fuzz", &fuzz_ring, err, sizeof err) != ERR_OK ||
        sign_ring_parse(FUZZ_KEY2, "fuzz", &fuzz_ring_fz2, err, sizeof err) != ERR_OK) {
        fprintf(stderr, "fuzz keys: %s\n", err);
        abort();
    }
}

/* Split the input per the layout above; false when it is too short to hold the header. */
static int fuzz_parse(const uint8_t *p, size_t len, fuzz_msg *m)
{
    size_t off = 0;
    memset(m, 0, sizeof *m);
    if (len < 2 || len < 2u + p[1] + 8u)
        return 0;
    m->mode = p[0] % 4;
    memcpy(m->id, p + 2, p[1]);
    off = 2u + p[1];
    uint64_t due = 0;
    for (int i = 0; i < 8; i++)
        due = due << 8 | p[off + (size_t)i];
    m->due = (int64_t)due;
    off += 8;
    if (m->mode == 2) {
        if (len < off + 1 || len < off + 1 + p[off] + SIGN_HEX_LEN)
            return 0;
        memcpy(m->kid, p + off + 1, p[off]);
        off += 1u + p[off];
        memcpy(m->sig, p + off, SIGN_HEX_LEN);
        off += SIGN_HEX_LEN;
    }
    m->body = p + off;
    m->len = len - off;
    return 1;
}

/* Sign as the producer would for modes 0 and 1; false when sign_compute refuses the id. */
static int fuzz_sign(fuzz_msg *m)
{
    if (m->mode >= 2)
        return 1;
    const sign_ring *r = m->mode == 0 ? fuzz_ring : fuzz_ring_fz2;
    int rc = sign_compute(r, m->kid, m->id, m->due, m->body, m->len, m->sig);
    FUZZ_CHECK(rc == ERR_OK || (rc == ERR_INVAL && strchr(m->id, '\n')));
    return rc == ERR_OK;
}

static void fuzz_roundtrip(const job *j)
{
    char reason[512], *enc1 = NULL, *enc2 = NULL, *enc3 = NULL;
    size_t len1 = 0, len2 = 0, len3 = 0;
    FUZZ_CHECK(job_validate(j, reason, sizeof reason) == ERR_OK);
    FUZZ_CHECK(jobwire_encode(j, &enc1, &len1) == ERR_OK);
    job again, copy;
    job_init(&again);
    job_init(&copy);
    int rc = jobwire_decode(enc1, len1, &again, reason, sizeof reason);
    if (rc != ERR_OK)
        fprintf(stderr, "re-decode failed: %s\n", reason);
    FUZZ_CHECK(rc == ERR_OK);
    FUZZ_CHECK(jobwire_encode(&again, &enc2, &len2) == ERR_OK);
    FUZZ_CHECK(len1 == len2 && memcmp(enc1, enc2, len1) == 0);
    FUZZ_CHECK(job_clone(&copy, j) == ERR_OK);
    FUZZ_CHECK(jobwire_encode(&copy, &enc3, &len3) == ERR_OK);
    FUZZ_CHECK(len1 == len3 && memcmp(enc1, enc3, len1) == 0);
    job_fini(&again);
    job_fini(&copy);
    free(enc1);
    free(enc2);
    free(enc3);
}

/* A decoder's reason must be "<class>: <detail>" with one of the header's classes. */
static int fuzz_reason_ok(const char *reason)
{
    static const char *const classes[] = {
        "too-large: ", "malformed: ", "bad-version: ", "bad-schema: "};
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
        if (strncmp(reason, classes[i], strlen(classes[i])) == 0)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_msg m;
    char reason[512] = "";
    fuzz_init();
    if (!fuzz_parse(data, size, &m) || !fuzz_sign(&m))
        return 0;
    if (m.len > JOBWIRE_MAX_BYTES) /* the worker's first check, before any crypto */
        return 0;
    const char *kid = m.mode == 3 ? NULL : m.kid, *sig = m.mode == 3 ? NULL : m.sig;
    int rc = sign_verify(fuzz_ring, kid, sig, m.id, m.due, m.body, m.len, reason, sizeof reason);
    if (m.mode < 2)
        FUZZ_CHECK(rc == ERR_OK);
    if (m.mode == 3)
        FUZZ_CHECK(rc == ERR_SIGNATURE && strcmp(reason, "bad-signature: missing") == 0);
    if (rc != ERR_OK) {
        FUZZ_CHECK(strncmp(reason, "bad-signature: ", 15) == 0);
        return 0;
    }
    int pre = jobwire_prevalidate(m.body, m.len, reason, sizeof reason);
    FUZZ_CHECK(pre == ERR_OK || (pre == ERR_WIRE_FORMAT && fuzz_reason_ok(reason)));
    job j;
    job_init(&j);
    reason[0] = '\0';
    rc = jobwire_decode(m.body, m.len, &j, reason, sizeof reason);
    FUZZ_CHECK(pre == ERR_OK || rc != ERR_OK);
    FUZZ_CHECK(rc == ERR_OK || fuzz_reason_ok(reason));
    if (rc == ERR_OK)
        fuzz_roundtrip(&j);
    job_fini(&j);
    return 0;
}
