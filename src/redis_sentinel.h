/* redis_sentinel.h -- the Sentinel side of the Redis store
 * (redis-sentinel://): which node is the primary of a master name, asked of
 * the Sentinels and shared by every thread of the process.
 *
 * One discovery serves all threads: the address the Sentinels last named is
 * kept with the time it was asked for, and a thread that needs a primary
 * takes it -- unless its own connection failed after that time, in which
 * case it asks the Sentinels again (one thread asks, the others wait for
 * its answer). After any failure, a client asks the Sentinels again rather
 * than retry the address it had: a killed primary restarted with its old
 * configuration claims to be a primary for some 20 s until Sentinel demotes
 * it.
 *
 * The store checks ROLE on every connection it opens (a Sentinel may name
 * a node not yet promoted, or one demoted since), and tells this module
 * when a named primary fails (redis_sentinel_forget).
 *
 * The reply parsers are pure (no I/O), for the unit tests and the fuzzer. */
#ifndef REDIS_SENTINEL_H
#define REDIS_SENTINEL_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include "rc.h"
#include "resolve.h"
#include "store_redis.h"

typedef struct redis_sentinel redis_sentinel;

/* The Sentinels hosts[0..nhosts) (names or IPv6 addresses without
 * brackets, each with its port) for master, asked with AUTH password when
 * password is not NULL (REDIS_SENTINEL_PASSWORD; the data nodes' credentials
 * are not the Sentinels'). timeout_ms bounds each connect and command. The
 * host names are looked up by resolve.c's threads. NULL when out of memory
 * or threads. Everything given is copied. */
redis_sentinel *redis_sentinel_new(const redis_url_host *hosts, size_t nhosts,
                                   const char *master, const char *password,
                                   int64_t timeout_ms);
void redis_sentinel_free(redis_sentinel *s);

/* The primary's numeric address (as resolve_get writes it) and port into
 * addr and *port. The one last named serves when it was asked for at or
 * after not_before_us (clock_us; 0: any known one will do); else the
 * Sentinels are asked now, each in turn from the one that answered last,
 * `SENTINEL get-master-addr-by-name`, the first that names one wins. A
 * name (Sentinel with announce-hostnames) is looked up off this thread.
 * Ends by deadline_ms (clock_ms) whatever the Sentinels do: waiting for
 * another thread's discovery, each Sentinel's lookup, connect and command,
 * and the lookup of the primary's name all count. RC_UNAVAILABLE when no
 * Sentinel named a primary in time. Thread-safe. */
rc_t redis_sentinel_primary(redis_sentinel *s, uint64_t not_before_us, uint64_t deadline_ms,
                            char addr[RESOLVE_ADDR_MAX], int *port);

/* addr:port, which redis_sentinel_primary gave, failed: a connect or a
 * command failed, it answered ROLE other than master, or refused a write
 * (READONLY). When it is still the one known, it is forgotten, so that the
 * next redis_sentinel_primary of any thread asks the Sentinels. */
void redis_sentinel_forget(redis_sentinel *s, const char *addr, int port);

/* How many discoveries asked the Sentinels so far (for tests and logs). */
uint64_t redis_sentinel_discoveries(redis_sentinel *s);

/* ---- pure parsers ---- */

#define REDIS_SENTINEL_HOST_MAX 255 /* bytes of a host a Sentinel names */

/* The reply to SENTINEL get-master-addr-by-name: an array of two strings,
 * the host (an IPv4 or IPv6 address, or 1..255 bytes of [A-Za-z0-9._-])
 * and the port (decimal 1..65535, no sign, no leading zero; an integer
 * reply is taken too). RC_OK with host and *port set; RC_NOT_FOUND for
 * NIL (the Sentinel knows no such master) or an empty array; RC_INVALID
 * for anything else (host "" and *port 0 then). */
rc_t redis_sentinel_parse_master(const redisReply *r, char host[REDIS_SENTINEL_HOST_MAX + 1],
                                 int *port);

/* The reply to ROLE: an array whose first element is a string. RC_OK when
 * it is "master"; RC_UNAVAILABLE for any other role ("slave", "sentinel",
 * ...): not a node to write to; RC_INVALID for another shape (an error
 * reply included). */
rc_t redis_sentinel_parse_role(const redisReply *r);

#endif
