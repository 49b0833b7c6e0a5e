/* keys.c -- the key set in force and its replacement (see keys.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "buf.h"
#include "keys.h"
#include "log.h"

struct keyring {
    pthread_mutex_t lock;   /* current, and every set's refs */
    keys *current;
    atomic_uint_fast64_t serial; /* current's, read without the lock */
    pthread_key_t held;     /* per thread: the keys it holds a reference to */
};

static atomic_uint_fast64_t last_serial;

static unsigned char *copy(const char *s, size_t len)
{
    unsigned char *p = malloc(len + 1);
    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

rc_t keys_new(const char *secret, size_t secret_len, const char *previous, size_t previous_len,
              jwks *set, keys **out)
{
    keys *k = calloc(1, sizeof *k);
    *out = NULL;
    if (k == NULL || (k->secret = copy(secret, secret_len)) == NULL ||
        (previous != NULL && (k->previous = copy(previous, previous_len)) == NULL)) {
        keys_free(k);
        jwks_free(set);
        return RC_NOMEM;
    }
    k->secret_len = secret_len;
    k->previous_len = previous != NULL ? previous_len : 0;
    k->jwks = set;
    *out = k;
    return RC_OK;
}

void keys_free(keys *k)
{
    if (k == NULL)
        return;
    if (k->secret != NULL)
        OPENSSL_cleanse(k->secret, k->secret_len);
    if (k->previous != NULL)
        OPENSSL_cleanse(k->previous, k->previous_len);
    free(k->secret);
    free(k->previous);
    jwks_free(k->jwks);
    free(k);
}

/* jwks_warn_fn: the skipped entries, one line each, told once the whole
 * set is known good (a refused reload logs its one error line only). */
static void note_skipped(void *arg, const char *why)
{
    buf_t *b = arg;
    if (buf_append_cstr(b, why) == RC_OK)
        (void)buf_append(b, "\n", 1);
}

rc_t keys_from_config(const config *c, keys **out, char *err, size_t errlen)
{
    jwks *ks = NULL;
    buf_t skipped = BUF_INIT;
    char why[400];
    rc_t rc;

    *out = NULL;
    if (c->jwt_jwks_file != NULL) {
        rc = jwks_load(c->jwt_jwks_file, &ks, note_skipped, &skipped, why, sizeof why);
        if (rc != RC_OK) {
            snprintf(err, errlen, "JWT_JWKS_FILE: %s", rc == RC_NOMEM ? "out of memory" : why);
            buf_free(&skipped);
            return rc;
        }
    }
    rc = keys_new(c->jwt_secret, c->jwt_secret_len, c->jwt_secret_previous,
                  c->jwt_secret_previous_len, ks, out);
    if (rc != RC_OK) {
        snprintf(err, errlen, "out of memory");
    } else {
        for (size_t at = 0; at < skipped.len;) {
            const char *nl = memchr(skipped.p + at, '\n', skipped.len - at);
            size_t n = nl ? (size_t)(nl - (skipped.p + at)) : skipped.len - at;
            log_msg(LOG_WARN, "JWT_JWKS_FILE: %.*s", (int)n, skipped.p + at);
            at += n + 1;
        }
    }
    buf_free(&skipped);
    return rc;
}

void keys_apply(const keys *k, token_policy *p)
{
    p->key = k->secret;
    p->key_len = k->secret_len;
    p->previous = k->previous;
    p->previous_len = k->previous_len;
    p->jwks = k->jwks;
}

/* Drops one reference; the caller holds kr->lock. */
static void drop(keys *k)
{
    if (k != NULL && --k->refs == 0)
        keys_free(k);
}

/* The end of a thread that held a set. */
static void thread_done(void *arg)
{
    keys *k = arg;
    keyring *kr = k->ring;
    pthread_mutex_lock(&kr->lock);
    drop(k);
    pthread_mutex_unlock(&kr->lock);
}

keyring *keyring_new(keys *initial)
{
    keyring *kr = calloc(1, sizeof *kr);
    if (kr == NULL || pthread_key_create(&kr->held, thread_done) != 0) {
        free(kr);
        keys_free(initial);
        return NULL;
    }
    pthread_mutex_init(&kr->lock, NULL);
    initial->ring = kr;
    initial->refs = 1;
    initial->serial = atomic_fetch_add(&last_serial, 1) + 1;
    kr->current = initial;
    atomic_store(&kr->serial, initial->serial);
    return kr;
}

void keyring_publish(keyring *kr, keys *next)
{
    next->ring = kr;
    next->refs = 1; /* the keyring's */
    next->serial = atomic_fetch_add(&last_serial, 1) + 1;
    pthread_mutex_lock(&kr->lock);
    keys *old = kr->current;
    kr->current = next;
    /* release: a thread that sees the new serial finds next complete */
    atomic_store_explicit(&kr->serial, next->serial, memory_order_release);
    drop(old);
    pthread_mutex_unlock(&kr->lock);
}

const keys *keyring_get(keyring *kr)
{
    keys *mine = pthread_getspecific(kr->held);
    if (mine != NULL && mine->serial == atomic_load_explicit(&kr->serial, memory_order_acquire))
        return mine;
    pthread_mutex_lock(&kr->lock);
    keys *cur = kr->current;
    cur->refs++;
    if (pthread_setspecific(kr->held, cur) != 0) {
        drop(cur);
        pthread_mutex_unlock(&kr->lock);
        return NULL; /* mine stays held, and is dropped at the thread's end */
    }
    drop(mine);
    pthread_mutex_unlock(&kr->lock);
    return cur;
}

void keyring_leave(keyring *kr)
{
    keys *mine = pthread_getspecific(kr->held);
    if (mine == NULL)
        return;
    (void)pthread_setspecific(kr->held, NULL);
    pthread_mutex_lock(&kr->lock);
    drop(mine);
    pthread_mutex_unlock(&kr->lock);
}

void keyring_free(keyring *kr)
{
    if (kr == NULL)
        return;
    keyring_leave(kr);
    pthread_key_delete(kr->held);
    pthread_mutex_lock(&kr->lock);
    drop(kr->current);
    pthread_mutex_unlock(&kr->lock);
    pthread_mutex_destroy(&kr->lock);
    free(kr);
}
