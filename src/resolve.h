/* resolve.h -- a host name looked up in the background, so that no request
 * ever waits on the system's resolver longer than it chooses to.
 *
 * getaddrinfo(3) has no timeout: with a stalled DNS server it blocks for as
 * long as resolv.conf's timeouts allow (20 s and more). A resolve_t owns one
 * detached thread that does the lookups and keeps the last address found;
 * callers take that address, or wait for a lookup at most as long as they
 * say. A numeric host (an IPv4 or IPv6 literal) needs no thread at all. */
#ifndef RESOLVE_H
#define RESOLVE_H

#include <stddef.h>
#include <stdint.h>
#include "rc.h"

#define RESOLVE_ADDR_MAX 64
#define RESOLVE_ADDRS 8      /* addresses of one name kept, tried in turn */
#define RESOLVE_REFRESH_S 30 /* a known address is looked up again this often */

typedef struct resolve resolve_t;

/* NULL when out of memory or when no thread can be started. host is
 * copied. Free with resolve_free. */
resolve_t *resolve_new(const char *host);
/* The thread may be blocked inside getaddrinfo: it is left to finish on
 * its own and frees what it shares with this handle then. */
void resolve_free(resolve_t *r);
/* Writes the host's numeric address in use (NUL-terminated) into out. When none
 * is known yet, asks for a lookup and waits for it at most wait_ms.
 * RC_UNAVAILABLE when no address is known in time (or the name does not
 * resolve). */
rc_t resolve_get(resolve_t *r, int64_t wait_ms, char out[RESOLVE_ADDR_MAX]);
/* addr (as resolve_get gave it) did not answer: the next address of the
 * name is used from now on; after the last one, the name is looked up
 * again in the background (at most once a second), the old addresses
 * staying in use until new ones are found. */
void resolve_stale(resolve_t *r, const char *addr);

#endif
