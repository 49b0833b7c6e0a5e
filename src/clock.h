/* clock.h -- the clocks: the monotonic one, for timeouts, deadlines and
 * durations; the wall clock, for expiry and token times. */
#ifndef CLOCK_H
#define CLOCK_H

#include <stdint.h>

uint64_t clock_us(void);
uint64_t clock_ms(void);

/* Seconds since the epoch, from CLOCK_REALTIME.  Not time(2): glibc's time()
 * reads the coarse clock, which lags the real one by up to a scheduler tick,
 * so just after a second begins it still names the previous one and a token
 * minted in that instant by a caller (iat = this second) looks one second in
 * the future.  Use this wherever a time is compared with a caller's. */
int64_t clock_wall(void);

#endif
