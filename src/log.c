/* log.c -- leveled logging to stderr (see log.h). */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include "log.h"

static const char *log_name = "sessiond";
static log_level min_level = LOG_INFO;

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

void log_msg(log_level level, const char *fmt, ...)
{
    static const char *names[] = { "debug", "info", "warn", "error" };
    if (!log_enabled(level))
        return;
    char line[1024], when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One fprintf so concurrent lines do not interleave. */
    fprintf(stderr, "%s %s %s: %s\n", when, names[level], log_name, line);
}
