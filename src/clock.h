/* clock.h -- the monotonic clock, for timeouts, deadlines and durations
 * (never for expiry: sessions expire by the wall clock, time(2)). */
#ifndef CLOCK_H
#define CLOCK_H

#include <stdint.h>

uint64_t clock_us(void);
uint64_t clock_ms(void);

#endif
