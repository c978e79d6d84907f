/* sign: HMAC-SHA256 over the canonical string (OpenSSL 3 EVP_MAC), key parsing and generation. */
#include "sign.h"

#include "err.h"
#include "fileio.h"
#include "log.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIGN_PREFIX  "salvo-v1\n"
#define SIGN_MAC_LEN 32
#define SIGN_FILE_MAX                                                                              \
    (64 * 1024) /* two keys need ~400 bytes; anything this big is not a key file */
/* Base64 of SIGN_SECRET_MAX bytes, rounded up to whole quads. */
#define SIGN_B64_MAX (((SIGN_SECRET_MAX + 2) / 3) * 4)

typedef struct sign_key {
    char kid[SIGN_KID_MAX + 1];
    unsigned char secret[SIGN_SECRET_MAX];
    size_t len;
    /* HMAC keyed with secret and fed nothing yet. Each message works on a copy: the key
     * schedule (EVP_MAC_init) was 10,500 of the ~27,600 instructions of a job's check. */
    EVP_MAC_CTX *keyed;
} sign_key;

struct sign_ring {
    EVP_MAC *mac; /* fetched once: a fetch walks OpenSSL's provider tables */
    size_t n;
    sign_key keys[SIGN_KEYS_MAX];
};

__attribute__((format(printf, 4, 5))) static int sign_fail(char *err, size_t cap, int code,
                                                           const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return code;
}

static bool sign_kid_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static bool sign_kid_ok(const char *s, size_t len)
{
    if (len == 0 || len > SIGN_KID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!sign_kid_char((unsigned char)s[i]))
            return false;
    }
    return true;
}

static int sign_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    /* '-' and '_' are the URL-safe alphabet's 62 and 63; both alphabets are accepted. */
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Strict base64: whole quads, '=' only as final padding. Returns the decoded length or -1. */
static long sign_b64_decode(const char *s, size_t len, unsigned char *out, size_t cap)
{
    size_t pad = 0, n = 0;
    if (len == 0 || len % 4 != 0 || len > SIGN_B64_MAX)
        return -1;
    while (pad < 2 && s[len - 1 - pad] == '=')
        pad++;
    uint32_t acc = 0;
    for (size_t i = 0; i < len - pad; i++) {
        int v = sign_b64_value((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            if (n + 3 > cap)
                return -1;
            out[n++] = (unsigned char)(acc >> 16), out[n++] = (unsigned char)(acc >> 8);
            out[n++] = (unsigned char)acc;
            acc = 0;
        }
    }
    size_t tail = pad ? 3 - pad : 0; /* bytes in the padded final quad */
    if (n + tail > cap)
        return -1;
    acc <<= 6 * pad;
    for (size_t i = 0; i < tail; i++)
        out[n++] = (unsigned char)(acc >> (16 - 8 * i));
    OPENSSL_cleanse(&acc, sizeof acc);
    return (long)n;
}

/* An HMAC-SHA256 context keyed with k's secret; NULL when out of memory. */
static EVP_MAC_CTX *sign_keyed_new(const sign_ring *r, const sign_key *k)
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(r->mac);
    if (ctx && !EVP_MAC_init(ctx, k->secret, k->len, params)) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

/* One "keyid:base64secret" entry, already trimmed. `where` is e.g. "key file x line 3". */
static int sign_add_entry(sign_ring *r, const char *s, size_t len, const char *where, char *err,
                          size_t cap)
{
    const char *colon = memchr(s, ':', len);
    if (!colon)
        return sign_fail(err, cap, ERR_PARSE, "%s: expected keyid:base64secret", where);
    size_t klen = (size_t)(colon - s);
    if (!sign_kid_ok(s, klen))
        return sign_fail(err, cap, ERR_PARSE, "%s: key id must be 1-%d of A-Z a-z 0-9 . _ -", where,
                         SIGN_KID_MAX);
    char kid[SIGN_KID_MAX + 1];
    memcpy(kid, s, klen);
    kid[klen] = '\0';
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->keys[i].kid, kid) == 0)
            return sign_fail(err, cap, ERR_PARSE, "%s: key '%s' appears twice", where, kid);
    }
    if (r->n == SIGN_KEYS_MAX)
        return sign_fail(err, cap, ERR_PARSE, "%s: key '%s': more than %d keys", where, kid,
                         SIGN_KEYS_MAX);
    sign_key *k = &r->keys[r->n];
    long n = sign_b64_decode(colon + 1, len - klen - 1, k->secret, sizeof k->secret);
    if (n < 0)
        return sign_fail(err, cap, ERR_PARSE,
                         "%s: key '%s': secret is not base64 of at most %d bytes", where, kid,
                         SIGN_SECRET_MAX);
    if (n < SIGN_SECRET_MIN) {
        OPENSSL_cleanse(k->secret, sizeof k->secret);
        return sign_fail(err, cap, ERR_PARSE, "%s: key '%s': secret shorter than %d bytes", where,
                         kid, SIGN_SECRET_MIN);
    }
    memcpy(k->kid, kid, klen + 1);
    k->len = (size_t)n;
    k->keyed = sign_keyed_new(r, k);
    if (!k->keyed) {
        OPENSSL_cleanse(k, sizeof *k);
        return sign_fail(err, cap, ERR_NOMEM, "%s: key '%s': out of memory", where, kid);
    }
    r->n++;
    return ERR_OK;
}

static sign_ring *sign_ring_new(void)
{
    sign_ring *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!r->mac) {
        free(r);
        return NULL;
    }
    return r;
}

/* Split on '\n' (and ',' when commas is set); unit is "line" or "entry" for messages. */
static int sign_parse_text(const char *text, const char *origin, bool commas, sign_ring **out,
                           char *err, size_t cap)
{
    *out = NULL;
    sign_ring *r = sign_ring_new();
    if (!r)
        return sign_fail(err, cap, ERR_NOMEM, "%s: out of memory", origin);
    const char *p = text;
    int rc = ERR_OK;
    for (size_t no = 1; *p && rc == ERR_OK; no++) {
        size_t len = commas ? strcspn(p, ",\n") : strcspn(p, "\n");
        const char *s = p, *e = p + len;
        p = *e ? e + 1 : e;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        if (s == e || *s == '#')
            continue;
        char where[256];
        snprintf(where, sizeof where, "%s %s %zu", origin, commas ? "entry" : "line", no);
        rc = sign_add_entry(r, s, (size_t)(e - s), where, err, cap);
    }
    if (rc == ERR_OK && r->n == 0)
        rc = sign_fail(err, cap, ERR_PARSE, "%s: no keys", origin);
    if (rc != ERR_OK) {
        sign_ring_free(r);
        return rc;
    }
    *out = r;
    return ERR_OK;
}

int sign_ring_parse(const char *text, const char *origin, sign_ring **out, char *err, size_t cap)
{
    return sign_parse_text(text, origin, true, out, err, cap);
}

/* fileio's outcome as sign_ring_load reports it: only a regular file is a key file (whatever
 * else the read said), one too large is a bad key file (ERR_PARSE), other failures are ERR_IO. */
static int sign_file_check(int rc, const fileio_buf *file, const char *path, char *why,
                           size_t why_cap)
{
    if (file->mode != 0 && !S_ISREG(file->mode)) {
        snprintf(why, why_cap, "%s: not a regular file", path);
        return ERR_IO;
    }
    if (rc == ERR_RANGE)
        return ERR_PARSE;
    return rc == ERR_NOTFOUND ? ERR_IO : rc;
}

int sign_ring_load(const char *path, sign_ring **out, char *err, size_t cap)
{
    char why[512], origin[300];
    fileio_buf file;
    *out = NULL;
    int rc = fileio_read(path, SIGN_FILE_MAX, &file, why, sizeof why);
    rc = sign_file_check(rc, &file, path, why, sizeof why);
    if (rc != ERR_OK) {
        fileio_fini(&file);
        return sign_fail(err, cap, rc, "key file %s", why);
    }
    if (file.mode & 0177)
        log_warn("signing key file %s has mode %04o, wider than 0600: chmod 600 it", path,
                 (unsigned)(file.mode & 07777));
    snprintf(origin, sizeof origin, "key file %s", path);
    rc = sign_parse_text(file.data, origin, false, out, err, cap);
    fileio_fini(&file); /* wipes the secrets */
    if (rc == ERR_NOMEM && err && cap)
        snprintf(err, cap, "key file %s: out of memory", path);
    return rc;
}

int sign_ring_from_env(sign_ring **out, char *err, size_t cap)
{
    *out = NULL;
    const char *path = getenv(SIGN_ENV_FILE);
    if (path && *path)
        return sign_ring_load(path, out, err, cap);
    char *keys = getenv(SIGN_ENV_KEYS);
    if (!keys || !*keys)
        return sign_fail(err, cap, ERR_NOTFOUND, "neither %s nor %s is set", SIGN_ENV_FILE,
                         SIGN_ENV_KEYS);
    int rc = sign_ring_parse(keys, "env " SIGN_ENV_KEYS, out, err, cap);
    /* Child processes copy the environment: wipe the secret in place, then drop the name. */
    OPENSSL_cleanse(keys, strlen(keys));
    unsetenv(SIGN_ENV_KEYS);
    return rc;
}

void sign_ring_free(sign_ring *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        EVP_MAC_CTX_free(r->keys[i].keyed);
    EVP_MAC_free(r->mac);
    OPENSSL_cleanse(r, sizeof *r);
    free(r);
}

size_t sign_ring_count(const sign_ring *r)
{
    return r ? r->n : 0;
}

const char *sign_ring_kid(const sign_ring *r, size_t i)
{
    return r && i < r->n ? r->keys[i].kid : NULL;
}

/* HMAC-SHA256 of the canonical string into mac[SIGN_MAC_LEN]. ERR_OK or ERR_NOMEM. Works on
 * a copy of the key's context, so threads sharing the ring never write to it. */
static int sign_mac(const sign_key *k, const char *message_id, int64_t due_ms, const void *body,
                    size_t len, unsigned char *mac)
{
    char head[SIGN_KID_MAX + 64];
    int hl = snprintf(head, sizeof head, SIGN_PREFIX "%s\n", k->kid);
    char due[32];
    int dl = snprintf(due, sizeof due, "\n%" PRId64 "\n", due_ms);
    size_t out_len = 0;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(k->keyed);
    int ok = ctx && EVP_MAC_update(ctx, (const unsigned char *)head, (size_t)hl) &&
             EVP_MAC_update(ctx, (const unsigned char *)message_id, strlen(message_id)) &&
             EVP_MAC_update(ctx, (const unsigned char *)due, (size_t)dl) &&
             (len == 0 || EVP_MAC_update(ctx, body, len)) &&
             EVP_MAC_final(ctx, mac, &out_len, SIGN_MAC_LEN) && out_len == SIGN_MAC_LEN;
    EVP_MAC_CTX_free(ctx);
    return ok ? ERR_OK : ERR_NOMEM;
}

int sign_compute(const sign_ring *ring, char *key_id_out, const char *message_id, int64_t due_ms,
                 const void *body, size_t len, char *sig_hex_out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[SIGN_MAC_LEN];
    if (!ring || ring->n == 0 || !message_id || strchr(message_id, '\n') || (!body && len))
        return ERR_INVAL;
    const sign_key *k = &ring->keys[0];
    int rc = sign_mac(k, message_id, due_ms, body, len, mac);
    if (rc != ERR_OK)
        return rc;
    for (size_t i = 0; i < SIGN_MAC_LEN; i++) {
        sig_hex_out[2 * i] = hex[mac[i] >> 4];
        sig_hex_out[2 * i + 1] = hex[mac[i] & 15];
    }
    sig_hex_out[SIGN_HEX_LEN] = '\0';
    memcpy(key_id_out, k->kid, strlen(k->kid) + 1);
    return ERR_OK;
}

static int sign_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Exactly SIGN_HEX_LEN hex digits into mac; false otherwise. */
static bool sign_hex_decode(const char *s, unsigned char *mac)
{
    if (strlen(s) != SIGN_HEX_LEN)
        return false;
    for (size_t i = 0; i < SIGN_MAC_LEN; i++) {
        int hi = sign_hex_value((unsigned char)s[2 * i]);
        int lo = sign_hex_value((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        mac[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

/* The key id came off the wire: show it, but only as safe characters and bounded. */
static int sign_unknown_key(const char *key_id, char *reason, size_t cap)
{
    char shown[SIGN_KID_MAX + 1];
    size_t i = 0;
    for (; key_id[i] && i < SIGN_KID_MAX; i++)
        shown[i] = sign_kid_char((unsigned char)key_id[i]) ? key_id[i] : '?';
    shown[i] = '\0';
    return sign_fail(reason, cap, ERR_SIGNATURE, "bad-signature: unknown key '%s'", shown);
}

int sign_verify(const sign_ring *ring, const char *key_id, const char *sig_hex,
                const char *message_id, int64_t due_ms, const void *body, size_t len, char *reason,
                size_t cap)
{
    unsigned char want[SIGN_MAC_LEN], got[SIGN_MAC_LEN];
    if (!key_id || !*key_id || !sig_hex || !*sig_hex)
        return sign_fail(reason, cap, ERR_SIGNATURE, "bad-signature: missing");
    const sign_key *k = NULL;
    for (size_t i = 0; ring && i < ring->n && !k; i++) {
        if (strcmp(ring->keys[i].kid, key_id) == 0)
            k = &ring->keys[i];
    }
    if (!k)
        return sign_unknown_key(key_id, reason, cap);
    if (!message_id)
        message_id = "";
    if (!sign_hex_decode(sig_hex, got) || strchr(message_id, '\n') || (!body && len))
        return sign_fail(reason, cap, ERR_SIGNATURE, "bad-signature: malformed");
    int rc = sign_mac(k, message_id, due_ms, body, len, want);
    if (rc != ERR_OK)
        return sign_fail(reason, cap, rc, "bad-signature: out of memory");
    if (CRYPTO_memcmp(want, got, SIGN_MAC_LEN) != 0)
        return sign_fail(reason, cap, ERR_SIGNATURE, "bad-signature: mismatch");
    return ERR_OK;
}

/* The key line for keygen: "kid:base64\n" into line (at least SIGN_KID_MAX + 48 bytes). */
static int sign_keygen_line(const char *key_id, char *line)
{
    unsigned char secret[SIGN_KEYGEN_SIZE], id[4];
    char kid[SIGN_KID_MAX + 1];
    if (RAND_bytes(secret, sizeof secret) != 1 || RAND_bytes(id, sizeof id) != 1)
        return ERR_NOMEM;
    if (!key_id) {
        snprintf(kid, sizeof kid, "k-%02x%02x%02x%02x", id[0], id[1], id[2], id[3]);
        key_id = kid;
    }
    size_t kl = strlen(key_id);
    memcpy(line, key_id, kl);
    line[kl] = ':';
    int n = EVP_EncodeBlock((unsigned char *)line + kl + 1, secret, sizeof secret);
    OPENSSL_cleanse(secret, sizeof secret);
    line[kl + 1 + (size_t)n] = '\n';
    line[kl + 2 + (size_t)n] = '\0';
    return ERR_OK;
}

int sign_keygen(const char *path, const char *key_id, char *err, size_t cap)
{
    char line[SIGN_KID_MAX + 64] = "", e[128];
    if (key_id && !sign_kid_ok(key_id, strlen(key_id)))
        return sign_fail(err, cap, ERR_INVAL, "key id must be 1-%d of A-Z a-z 0-9 . _ -",
                         SIGN_KID_MAX);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        return sign_fail(err, cap, ERR_EXISTS, "key file %s already exists", path);
    if (fd < 0)
        return sign_fail(err, cap, ERR_IO, "key file %s: %s", path,
                         strerror_r(errno, e, sizeof e) == 0 ? e : "cannot create");
    int rc = sign_keygen_line(key_id, line);
    size_t len = strlen(line);
    /* fchmod: the umask could only narrow 0600, but an inherited ACL default could widen it. */
    if (rc == ERR_OK &&
        (fchmod(fd, 0600) != 0 || write(fd, line, len) != (ssize_t)len || fsync(fd) != 0))
        rc = ERR_IO;
    OPENSSL_cleanse(line, sizeof line);
    if (close(fd) != 0 && rc == ERR_OK)
        rc = ERR_IO;
    if (rc != ERR_OK) {
        unlink(path);
        return sign_fail(err, cap, rc, "key file %s: cannot write the new key", path);
    }
    return ERR_OK;
}
