/* log.c -- JSON lines on stderr, buffered per thread (see log.h). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "log.h"

#define BUF_SIZE 16384
#define LINE_MAX_LEN 2048

static const char *log_name = "sessiond";
static log_level min_level = LOG_INFO;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

typedef struct log_buf {
    struct log_buf *prev, *next;
    pthread_mutex_t lock;
    size_t len;
    char data[BUF_SIZE];
} log_buf;

static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static log_buf *bufs;
static int have_key;

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere to report it */
        }
        p += w;
        n -= (size_t)w;
    }
}

static void flush_locked(log_buf *b)
{
    write_all(b->data, b->len);
    b->len = 0;
}

static void buf_gone(void *arg)
{
    log_buf *b = arg;
    pthread_mutex_lock(&list_lock);
    if (b->prev)
        b->prev->next = b->next;
    else
        bufs = b->next;
    if (b->next)
        b->next->prev = b->prev;
    pthread_mutex_unlock(&list_lock);
    pthread_mutex_lock(&b->lock);
    flush_locked(b);
    pthread_mutex_unlock(&b->lock);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

static void make_key(void)
{
    have_key = pthread_key_create(&buf_key, buf_gone) == 0;
}

/* The calling thread's buffer; NULL means write directly. */
static log_buf *my_buf(void)
{
    pthread_once(&buf_once, make_key);
    if (!have_key)
        return NULL;
    log_buf *b = pthread_getspecific(buf_key);
    if (b != NULL)
        return b;
    if ((b = calloc(1, sizeof *b)) == NULL)
        return NULL;
    pthread_mutex_init(&b->lock, NULL);
    if (pthread_setspecific(buf_key, b) != 0) {
        pthread_mutex_destroy(&b->lock);
        free(b);
        return NULL;
    }
    pthread_mutex_lock(&list_lock);
    b->next = bufs;
    if (bufs)
        bufs->prev = b;
    bufs = b;
    pthread_mutex_unlock(&list_lock);
    return b;
}

static void emit(const char *line, size_t n, int now)
{
    log_buf *b = my_buf();
    if (b == NULL) {
        write_all(line, n);
        return;
    }
    pthread_mutex_lock(&b->lock);
    if (b->len + n > BUF_SIZE)
        flush_locked(b);
    memcpy(b->data + b->len, line, n);
    b->len += n;
    if (now)
        flush_locked(b);
    pthread_mutex_unlock(&b->lock);
}

void log_flush(void)
{
    pthread_mutex_lock(&list_lock);
    for (log_buf *b = bufs; b; b = b->next) {
        pthread_mutex_lock(&b->lock);
        flush_locked(b);
        pthread_mutex_unlock(&b->lock);
    }
    pthread_mutex_unlock(&list_lock);
}

void log_init(const char *name, log_level level)
{
    log_name = name;
    min_level = level;
}

void log_set_level(log_level level)
{
    min_level = level;
}

int log_enabled(log_level level)
{
    return level >= min_level;
}

/* Appends s as a JSON string (quotes included) at out[*n], within cap. */
static void put_str(char *out, size_t *n, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (*n + 2 >= cap)
        return;
    out[(*n)++] = '"';
    for (; *s && *n + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[(*n)++] = '\\';
            out[(*n)++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(out + *n, "\\u00", 4); // NOLINT(bugprone-not-null-terminated-result): one line, not a C string
            out[*n + 4] = hex[c >> 4];
            out[*n + 5] = hex[c & 15];
            *n += 6;
        } else {
            out[(*n)++] = (char)c;
        }
    }
    out[(*n)++] = '"';
}

static void put_raw(char *out, size_t *n, size_t cap, const char *s)
{
    size_t len = strlen(s);
    if (*n + len < cap) {
        memcpy(out + *n, s, len); // NOLINT(bugprone-not-null-terminated-result): one line, not a C string
        *n += len;
    }
}

/* {"time":"...","level":"...","proc":"..." -- the start of every line. */
static size_t head(char *out, size_t cap, log_level level)
{
    static _Thread_local time_t last_sec = -1;
    static _Thread_local char stamp[32];
    struct timespec ts;
    size_t n = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != last_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        last_sec = ts.tv_sec;
    }
    n = (size_t)snprintf(out, cap, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"proc\":", stamp,
                         ts.tv_nsec / 1000000, level_names[level]);
    put_str(out, &n, cap, log_name);
    return n;
}

void log_msg(log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char msg[1024], line[LINE_MAX_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized): va_start above
    va_end(ap);
    size_t n = head(line, sizeof line, level);
    put_raw(line, &n, sizeof line, ",\"msg\":");
    put_str(line, &n, sizeof line - 2, msg);
    line[n++] = '}';
    line[n++] = '\n';
    emit(line, n, level >= LOG_WARN);
}

void log_request(const char *method, const char *route, unsigned status,
                 uint64_t duration_us, const char *session_id, const char *ip)
{
    log_level level = status >= 500 ? LOG_ERROR : LOG_INFO;
    if (!log_enabled(level))
        return;
    char line[LINE_MAX_LEN], num[64];
    size_t n = head(line, sizeof line, level);
    put_raw(line, &n, sizeof line, ",\"method\":");
    put_str(line, &n, sizeof line, method);
    put_raw(line, &n, sizeof line, ",\"route\":");
    put_str(line, &n, sizeof line, route);
    snprintf(num, sizeof num, ",\"status\":%u,\"duration_ms\":%.3f", status,
             (double)duration_us / 1000.0);
    put_raw(line, &n, sizeof line, num);
    if (session_id != NULL && *session_id) {
        put_raw(line, &n, sizeof line, ",\"session_id\":");
        put_str(line, &n, sizeof line, session_id);
    }
    if (ip != NULL && *ip) {
        put_raw(line, &n, sizeof line, ",\"ip\":");
        put_str(line, &n, sizeof line - 2, ip);
    }
    line[n++] = '}';
    line[n++] = '\n';
    emit(line, n, level >= LOG_WARN);
}

void log_closed(const char *reason, const char *session_id, const char *user, size_t ulen)
{
    if (!log_enabled(LOG_INFO))
        return;
    char line[LINE_MAX_LEN], who[512];
    if (ulen >= sizeof who)
        ulen = sizeof who - 1;
    memcpy(who, user, ulen);
    who[ulen] = '\0';
    size_t n = head(line, sizeof line, LOG_INFO);
    put_raw(line, &n, sizeof line, ",\"event\":\"session.closed\",\"session_id\":");
    put_str(line, &n, sizeof line, session_id);
    put_raw(line, &n, sizeof line, ",\"user_id\":");
    put_str(line, &n, sizeof line, who);
    put_raw(line, &n, sizeof line, ",\"reason\":");
    put_str(line, &n, sizeof line - 2, reason);
    line[n++] = '}';
    line[n++] = '\n';
    emit(line, n, 0);
}
