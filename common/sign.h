/* sign: HMAC-SHA256 job signatures and the keyring that holds their secrets. The only salvo file
 * that includes OpenSSL headers.
 *
 * Why: a worker executes whatever it finds in the queue, so only holders of a signing key (the
 * producer) may decide what runs. The producer signs each message; the worker checks the size
 * cap, then verifies in constant time, and only then lets the decoder see the bytes.
 *
 * Canonical string (version "salvo-v1"; bump the prefix if anything below changes):
 *     "salvo-v1\n" key_id "\n" message_id "\n" due_ms (decimal, may be negative) "\n" body
 * key_id and message_id cannot contain '\n', so the string splits back one way only.
 * The signature travels as 64 lowercase hex digits in header SIGN_HDR_SIG, the key id in
 * SIGN_HDR_KID.
 *
 * Keys: "keyid:base64secret", one per line (file SALVO_SIGNING_KEY_FILE) or separated by commas
 * or newlines (env SALVO_SIGNING_KEYS). The first key signs; a second one only verifies, which is
 * how keys rotate (add the new key second everywhere, then swap the order on the producer, then
 * drop the old one). Secrets are never logged or printed and are wiped when freed. */
#ifndef SALVO_SIGN_H
#define SALVO_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define SIGN_KEYS_MAX    2   /* the signing key, and one more being rotated in or out */
#define SIGN_KID_MAX     64  /* key ids ride in a header and in logs: short, [A-Za-z0-9._-] */
#define SIGN_SECRET_MIN  16  /* 128 bits: below that HMAC keys are guessable */
#define SIGN_SECRET_MAX  128 /* above SHA-256's block size HMAC only hashes the key down */
#define SIGN_KEYGEN_SIZE 32  /* 256 bits, SHA-256's output size (RFC 2104 advice) */
#define SIGN_HEX_LEN     64  /* HMAC-SHA256 is 32 bytes */

#define SIGN_HDR_KID  "x-salvo-kid"
#define SIGN_HDR_SIG  "x-salvo-sig"
#define SIGN_HDR_DUE  "x-salvo-due-ms" /* integer: the due instant (ms) the signature covers */
#define SIGN_ENV_FILE "SALVO_SIGNING_KEY_FILE"
#define SIGN_ENV_KEYS "SALVO_SIGNING_KEYS"

typedef struct sign_ring sign_ring;

/* Parse keys from text (lines or comma-separated "keyid:base64secret"; blank lines and lines
 * starting with '#' are skipped). origin names the source in messages ("env SALVO_SIGNING_KEYS").
 * ERR_OK with *out owning a new ring, or ERR_PARSE with err naming the origin, the line (or
 * entry) number and the key id, never the secret; ERR_NOMEM. Thread-safe. */
int sign_ring_parse(const char *text, const char *origin, sign_ring **out, char *err, size_t cap);

/* Read and parse a key file. Logs a warning (no error) when the file's mode is wider than 0600.
 * ERR_OK, ERR_IO (unreadable, errno text in err), ERR_PARSE, ERR_NOMEM. The read buffer is wiped.
 * Thread-safe. */
int sign_ring_load(const char *path, sign_ring **out, char *err, size_t cap);

/* Load from the environment: SALVO_SIGNING_KEY_FILE if set, else SALVO_SIGNING_KEYS. The value
 * of SALVO_SIGNING_KEYS is wiped and the variable unset afterwards, so commands the worker
 * spawns never inherit it. ERR_NOTFOUND (and *out NULL) when neither is set, else as above.
 * Not thread-safe (it edits the environment): call from main before threads start. */
int sign_ring_from_env(sign_ring **out, char *err, size_t cap);

/* Wipe every secret and free the ring. NULL-safe. */
void sign_ring_free(sign_ring *r);

/* Number of keys (1..SIGN_KEYS_MAX), and the id of the key at index i (0 = the signing key);
 * borrowed, valid until sign_ring_free. NULL when i is out of range. */
size_t sign_ring_count(const sign_ring *r);
const char *sign_ring_kid(const sign_ring *r, size_t i);

/* Sign with the ring's first key. key_id_out receives its id (SIGN_KID_MAX + 1 bytes) and
 * sig_hex_out the signature (SIGN_HEX_LEN + 1 bytes, NUL-terminated lowercase hex).
 * message_id must not be NULL nor contain '\n'; body may be NULL when len is 0.
 * ERR_OK, ERR_INVAL, ERR_NOMEM. Thread-safe (the ring is only read). */
int sign_compute(const sign_ring *ring, char *key_id_out, const char *message_id, int64_t due_ms,
                 const void *body, size_t len, char *sig_hex_out);

/* Verify a received message in constant time (CRYPTO_memcmp). key_id and sig_hex are the header
 * values exactly as received (NULL when absent); message_id NULL counts as "".
 * ERR_OK, or ERR_SIGNATURE with reason set to one of
 *     "bad-signature: missing"            no key id or no signature
 *     "bad-signature: unknown key 'k2'"   (the id sanitised and cut to SIGN_KID_MAX)
 *     "bad-signature: malformed"          signature not 64 hex digits, or id contains '\n'
 *     "bad-signature: mismatch"
 * ERR_NOMEM when OpenSSL cannot allocate. Thread-safe. */
int sign_verify(const sign_ring *ring, const char *key_id, const char *sig_hex,
                const char *message_id, int64_t due_ms, const void *body, size_t len, char *reason,
                size_t cap);

/* Write a new key file at path: one line "key_id:base64(32 random bytes)", mode 0600, created
 * exclusively (an existing file is never overwritten: ERR_EXISTS). key_id NULL picks
 * "k-<8 random hex digits>". ERR_OK, ERR_INVAL (bad key id), ERR_EXISTS, ERR_IO, with err set.
 * Thread-safe. */
int sign_keygen(const char *path, const char *key_id, char *err, size_t cap);

#endif
