/* unit.h -- a tiny test harness.
 *
 *   CHECK(expr)              records a failure (file:line: expr) and goes on
 *   CHECK_EQ_INT(a, b)       integer equality, prints both values
 *   CHECK_STR_EQ(a, b)       C string equality (NULL-safe), prints both
 *   RUN(test_fn)             runs a void(void) test function
 *   return UNIT_SUMMARY();   prints totals; 0 when every check passed
 */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_checks, unit_failures;

#define UNIT_FAIL_AT(file, line, ...)                                        \
    do {                                                                     \
        unit_failures++;                                                     \
        fprintf(stderr, "FAIL %s:%d: ", file, line);                         \
        fprintf(stderr, __VA_ARGS__);                                        \
        fputc('\n', stderr);                                                 \
    } while (0)

#define CHECK(expr)                                                          \
    do {                                                                     \
        unit_checks++;                                                       \
        if (!(expr))                                                         \
            UNIT_FAIL_AT(__FILE__, __LINE__, "%s", #expr);                   \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                   \
    do {                                                                     \
        long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);        \
        unit_checks++;                                                       \
        if (unit_a_ != unit_b_)                                              \
            UNIT_FAIL_AT(__FILE__, __LINE__, "%s == %s (%lld != %lld)",      \
                         #a, #b, unit_a_, unit_b_);                          \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                   \
    do {                                                                     \
        const char *unit_sa_ = (a), *unit_sb_ = (b);                         \
        unit_checks++;                                                       \
        if (unit_sa_ == NULL || unit_sb_ == NULL || strcmp(unit_sa_, unit_sb_) != 0) \
            UNIT_FAIL_AT(__FILE__, __LINE__, "%s == %s (\"%s\" != \"%s\")",  \
                         #a, #b, unit_sa_ ? unit_sa_ : "(null)",             \
                         unit_sb_ ? unit_sb_ : "(null)");                    \
    } while (0)

#define RUN(fn)                                                              \
    do {                                                                     \
        int unit_before_ = unit_failures;                                    \
        fn();                                                                \
        if (unit_failures != unit_before_)                                   \
            fprintf(stderr, "  in %s\n", #fn);                               \
    } while (0)

static inline int unit_summary(const char *file)
{
    printf("%s: %d checks, %d failed\n", file, unit_checks, unit_failures);
    return unit_failures ? 1 : 0;
}
#define UNIT_SUMMARY() unit_summary(__FILE__)

#endif
