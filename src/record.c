/* record.c -- the binary record of a session that stores keep (see
 * record.h): a fixed little-endian header, then the variable fields. */
#include <string.h>
#include "record.h"

/* Version 2 (contract v2) adds idle_timeout, the token generation and when
 * it was made; version 1 records (36-byte header) still decode, as
 * sessions without an idle timeout, never refreshed. */
#define REC_VERSION 2
#define REC_HEADER_V1 36
#define REC_HEADER 52
#define REC_LAST_SEEN_OFF 20 /* after version, lengths, created_at: in both versions */
#define UA_ABSENT 0xFFFF

static void put_u16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_i64(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

static unsigned get_u16(const unsigned char *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int64_t get_i64(const unsigned char *p)
{
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = u << 8 | p[i];
    return (int64_t)u;
}

rc_t record_encode(const session_t *s, buf_t *out)
{
    size_t idlen = strlen(s->id);
    if (idlen > SESSION_ID_MAX || s->user_id.len > SESSION_USER_MAX ||
        s->ip.len > SESSION_IP_MAX || s->user_agent.len > SESSION_UA_MAX ||
        s->data.len > SESSION_DATA_MAX || s->idle_timeout < 0 || s->idle_timeout > UINT32_MAX)
        return RC_INVALID;
    unsigned char h[REC_HEADER];
    h[0] = REC_VERSION;
    h[1] = (unsigned char)idlen;
    put_u16(h + 2, (unsigned)s->user_id.len);
    put_u16(h + 4, (unsigned)s->ip.len);
    put_u16(h + 6, s->user_agent.p ? (unsigned)s->user_agent.len : UA_ABSENT);
    put_u32(h + 8, (uint32_t)s->data.len);
    put_i64(h + 12, s->created_at);
    put_i64(h + REC_LAST_SEEN_OFF, s->last_seen_at);
    put_i64(h + 28, s->expires_at);
    put_u32(h + 36, (uint32_t)s->idle_timeout);
    put_u32(h + 40, s->gen);
    put_i64(h + 44, s->rotated_at);
    if (buf_reserve(out, sizeof h + idlen + s->user_id.len + s->ip.len +
                             s->user_agent.len + s->data.len) != RC_OK)
        return RC_NOMEM;
    buf_append(out, h, sizeof h);
    buf_append(out, s->id, idlen);
    buf_append(out, s->user_id.p, s->user_id.len);
    buf_append(out, s->ip.p, s->ip.len);
    if (s->user_agent.p)
        buf_append(out, s->user_agent.p, s->user_agent.len);
    buf_append(out, s->data.p, s->data.len);
    return RC_OK;
}

rc_t record_set_last_seen(void *rec, size_t len, int64_t last_seen)
{
    if (len < REC_HEADER_V1)
        return RC_INVALID;
    put_i64((unsigned char *)rec + REC_LAST_SEEN_OFF, last_seen);
    return RC_OK;
}

rc_t record_decode(const void *rec, size_t len, session_t *s)
{
    const unsigned char *p = rec;
    size_t hl = len > 0 && p[0] == 1 ? REC_HEADER_V1 : REC_HEADER;
    if (len < hl || (p[0] != 1 && p[0] != REC_VERSION))
        return RC_INVALID;
    size_t idlen = p[1], ulen = get_u16(p + 2), iplen = get_u16(p + 4);
    unsigned ualen_raw = get_u16(p + 6);
    size_t ualen = ualen_raw == UA_ABSENT ? 0 : ualen_raw;
    size_t dlen = get_u32(p + 8);
    if (idlen > SESSION_ID_MAX || ulen > SESSION_USER_MAX || iplen > SESSION_IP_MAX ||
        ualen > SESSION_UA_MAX || dlen > SESSION_DATA_MAX ||
        len != hl + idlen + ulen + iplen + ualen + dlen)
        return RC_INVALID;
    const char *q = (const char *)p + hl;
    if (!session_id_valid(q, idlen)) /* found by fuzz_record: a NUL in the id */
        return RC_INVALID;
    memcpy(s->id, q, idlen);
    s->id[idlen] = '\0';
    q += idlen;
    s->user_id = (str_t){ q, ulen };
    q += ulen;
    s->ip = (str_t){ q, iplen };
    q += iplen;
    s->user_agent = ualen_raw == UA_ABSENT ? STR_NULL : (str_t){ q, ualen };
    q += ualen;
    s->data = (str_t){ q, dlen };
    s->created_at = get_i64(p + 12);
    s->last_seen_at = get_i64(p + REC_LAST_SEEN_OFF);
    s->expires_at = get_i64(p + 28);
    s->idle_timeout = hl == REC_HEADER ? get_u32(p + 36) : 0;
    s->gen = hl == REC_HEADER ? get_u32(p + 40) : 0;
    s->rotated_at = hl == REC_HEADER ? get_i64(p + 44) : 0;
    return RC_OK;
}
