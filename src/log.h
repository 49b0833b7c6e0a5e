/* log.h -- leveled logging to stderr.
 *
 * One line per call: "<UTC time> <level> <name>: <message>". Callers must
 * never pass a token, a token fragment or the secret; the log module has no
 * way to recognise them, so the rule is kept at the call sites (and checked
 * by the black-box suite, which greps the logs). */
#ifndef LOG_H
#define LOG_H

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

#endif
