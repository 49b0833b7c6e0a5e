/* log.h -- structured logging: one JSON object per line on stderr.
 *
 *   {"time":"2026-11-28T20:30:00.123Z","level":"info","proc":"sessiond","msg":"..."}
 *   {"time":...,"level":"info","proc":"sessiond","method":"GET",
 *    "route":"/session/{id}","status":200,"duration_ms":0.412,
 *    "session_id":"...","ip":"127.0.0.1"}
 *
 * Lines are buffered per thread and written whole (never interleaved) when
 * a buffer fills, at warn and error at once, and by log_flush (which the
 * service's background thread calls every second and at exit). Callers
 * must never pass a token, a token fragment or the secret; the rule is kept
 * at the call sites and checked by the black-box suite, which reads the logs
 * at debug level. */
#ifndef LOG_H
#define LOG_H

#include <stdint.h>

typedef enum log_level {
    LOG_DEBUG = 0,
    LOG_INFO,
    LOG_WARN,
    LOG_ERROR
} log_level;

void log_init(const char *name, log_level level);
void log_set_level(log_level level);
int log_enabled(log_level level);
void log_msg(log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One line per answered request, at info (5xx at error). session_id and ip
 * may be NULL. */
void log_request(const char *method, const char *route, unsigned status,
                 uint64_t duration_us, const char *session_id, const char *ip);

/* Writes every thread's buffered lines. */
void log_flush(void);
/* The line of one close: event "session.closed", the session id, the user
 * id (user[0..ulen), at most 256 bytes) and the reason, at level info. */
void log_closed(const char *reason, const char *session_id, const char *user, size_t ulen);

#endif
