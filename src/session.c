/* session.c -- a session's identity: id generation and the rules for ids,
 * user ids and text; whether a session is live. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include "b64.h"
#include "session.h"

int session_id_valid(const char *id, size_t len)
{
    if (len < SESSION_ID_MIN || len > SESSION_ID_MAX)
        return 0;
    unsigned ok = 1;
    for (size_t i = 0; i < len; i++)
        ok &= b64url_value1[(unsigned char)id[i]] != 0; /* base64url's alphabet */
    return (int)ok;
}

int session_text_valid(const char *s, size_t len, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    if (len == 0 || len > max)
        return 0;
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        size_t n;
        unsigned cp;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return 0;
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + n > len)
            return 0;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        /* overlong forms, surrogates, beyond U+10FFFF, C1 controls */
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
            (n == 4 && cp < 0x10000) || (cp >= 0xD800 && cp <= 0xDFFF) ||
            cp > 0x10FFFF || (cp >= 0x80 && cp <= 0x9F))
            return 0;
        i += n;
    }
    return 1;
}

int session_user_valid(const char *s, size_t len)
{
    if (!session_text_valid(s, len, SESSION_USER_MAX))
        return 0;
    return s[0] != ' ' && s[0] != '\t' && s[len - 1] != ' ' && s[len - 1] != '\t';
}

/* the base64url characters in ASCII order: 6 bits a character */
static const char sorted[] = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

void session_id_make(uint64_t stamp, const unsigned char raw[16], char id[SESSION_ID_MAX + 1])
{
    for (int i = SESSION_ID_TIME - 1; i >= 0; i--, stamp >>= 6)
        id[i] = sorted[stamp & 63];
    b64url_encode(raw, 16, id + SESSION_ID_TIME);
}

void session_id_tag(str_t user, char tag[SESSION_ID_TAG])
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, 64 bits */
    for (size_t i = 0; i < user.len; i++) {
        h ^= (unsigned char)user.p[i];
        h *= 0x100000001b3ULL;
    }
    /* FNV's high bits mix poorly over similar ids ("user-1", "user-2"):
     * MurmurHash3's finalizer spreads them before they are taken */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    for (int i = 0; i < SESSION_ID_TAG; i++)
        tag[i] = sorted[(h >> (58 - 6 * i)) & 63];
}

int session_id_tagged(const char *id, size_t len)
{
    return len == SESSION_ID_TAGGED_LEN && session_id_valid(id, len);
}

/* The last stamp this process gave out: stamps only grow, so that ids made
 * here arrive at the store in order even within a millisecond. */
static _Atomic uint64_t last_stamp;

uint64_t session_id_stamp(uint64_t ms, uint64_t last)
{
    uint64_t want = ms << SESSION_ID_SEQ_BITS;
    return want > last ? want : last + 1;
}

rc_t session_id_generate(char id[SESSION_ID_MAX + 1])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    uint64_t prev = atomic_load(&last_stamp), next;
    do
        next = session_id_stamp(ms, prev);
    while (!atomic_compare_exchange_weak(&last_stamp, &prev, next));
    unsigned char raw[16];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return RC_ERR;
        }
        got += (size_t)n;
    }
    session_id_make(next, raw, id);
    return RC_OK;
}

rc_t session_id_generate_for(str_t user, char id[SESSION_ID_MAX + 1])
{
    if (session_id_generate(id) != RC_OK)
        return RC_ERR;
    session_id_tag(user, id + SESSION_ID_LEN);
    id[SESSION_ID_TAGGED_LEN] = '\0';
    return RC_OK;
}

int64_t session_idle_slack(int64_t idle)
{
    return idle / 20 > 2 ? idle / 20 : 2;
}

int64_t session_end(const session_t *s)
{
    if (s->idle_timeout <= 0)
        return s->expires_at;
    int64_t idle_end = s->last_seen_at + s->idle_timeout + session_idle_slack(s->idle_timeout);
    return idle_end < s->expires_at ? idle_end : s->expires_at;
}

int64_t session_idle_expires_at(const session_t *s)
{
    if (s->idle_timeout <= 0)
        return -1;
    int64_t at = s->last_seen_at + s->idle_timeout;
    return at < s->expires_at ? at : s->expires_at;
}

session_due session_use_due(const session_t *s, int64_t now)
{
    int64_t age = now - s->last_seen_at;
    if (s->idle_timeout > 0) /* never LATER: see session.h */
        return age >= session_idle_slack(s->idle_timeout) ? SESSION_DUE_NOW : SESSION_DUE_NONE;
    if (age >= SESSION_TOUCH_EVERY)
        return SESSION_DUE_NOW;
    if (age >= SESSION_TOUCH_SOON)
        return SESSION_DUE_LATER;
    return SESSION_DUE_NONE;
}

int session_live(const session_t *s, int64_t now)
{
    return now < session_end(s);
}

int session_ended_idle(const session_t *s, int64_t now)
{
    return now < s->expires_at && !session_live(s, now);
}

session_verdict session_token_verdict(const session_t *s, uint32_t gen, int64_t now,
                                      int64_t grace)
{
    if (gen == s->gen)
        return SESSION_TOKEN_CURRENT;
    if (gen > s->gen)
        return SESSION_TOKEN_UNKNOWN;
    if (gen + 1 == s->gen && now <= s->rotated_at + grace)
        return SESSION_TOKEN_GRACE;
    return SESSION_TOKEN_REUSED;
}
