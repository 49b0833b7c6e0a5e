/* redis_nodes.h -- the network side of the Redis Cluster client
 * (redis-cluster://): one thread's slot map and connections to the
 * cluster's primaries, and pipelines routed by key slot, with MOVED, ASK
 * and TRYAGAIN followed. redis_cluster.h holds the pure parts it uses.
 *
 * Each thread that talks to the cluster owns a redis_nodes (no lock on
 * the request path); what threads share -- the URL, and the background
 * name lookups of nodes known by name -- is a redis_nodes_shared.
 *
 * A thread reads the slot map (CLUSTER SLOTS) on first use, and again,
 * at most every REDIS_NODES_REFRESH_MS, after a MOVED or after a node
 * failed: that is how it follows a failover or a slot migration. While a
 * node cannot be reached the commands for its slots fail at once (no
 * connect is tried more often than every 200 ms), and the others go on.
 *
 * Replicas are never written to: commands go only to the primary the map
 * names for their slot, and a node that is no longer that primary
 * answers MOVED (Redis Cluster has no READONLY surprise: a replica
 * redirects every write). */
#ifndef REDIS_NODES_H
#define REDIS_NODES_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include "rc.h"
#include "redis_cluster.h"
#include "store_redis.h"

#define REDIS_NODES_REFRESH_MS 100 /* a thread reads the slot map at most this often */

/* One command: argc arguments. The key that routes it is argv[3] for EVAL
 * (its first key), none for WAIT and ASKING, else argv[1]. */
typedef struct redis_cmd {
    int argc;
    const char **argv;
    const size_t *lens;
} redis_cmd;

typedef struct redis_nodes_shared redis_nodes_shared;
typedef struct redis_nodes redis_nodes;

/* What a store's threads share. url (seeds, credentials) must outlive it.
 * NULL when out of memory. */
redis_nodes_shared *redis_nodes_shared_new(const redis_url *url, int64_t timeout_ms);
void redis_nodes_shared_free(redis_nodes_shared *sh);

/* A thread's state: no map, no connection yet. NULL when out of memory.
 * Free with redis_nodes_free on the thread's way out. */
redis_nodes *redis_nodes_new(redis_nodes_shared *sh);
void redis_nodes_free(redis_nodes *nd);

/* Sends the n commands, each to the primary of its key's slot, one
 * pipeline per node (all written before any reply is read), and follows
 * redirections: MOVED updates the map and sends the command there, ASK
 * sends ASKING and the command to the node named, once per redirection;
 * TRYAGAIN (a multi-key command during its slot's migration) is sent
 * again after a short pause; at most 16 rounds, all by deadline_ms
 * (clock_ms; 0: REDIS_TIMEOUT_MS plus wait_ms from now).
 *
 * Always fills out[0..n) with one reply per command (free each): the
 * node's, or an error reply of its own starting with REDIS_NODES_ERR when
 * the command could not be delivered or answered (no primary for the
 * slot, a node unreachable or its connection broken, redirections that
 * did not settle in time) -- the caller cannot tell a command's effect
 * then, exactly as with a broken connection to one Redis.
 *
 * A WAIT as the last command (argv: "WAIT", replicas, timeout) is not
 * routed: it is sent to every node that received writes from this thread
 * since its last WAIT, all at once, and its reply is the fewest replicas
 * any of them acknowledged (an integer), or an error reply when one of
 * them failed or a connection holding unacknowledged writes was lost
 * meanwhile. With no such node, the reply is the replicas asked for.
 * RC_NOMEM when out of memory (out is then empty). */
rc_t redis_nodes_pipeline(redis_nodes *nd, const redis_cmd *cmds, size_t n, redisReply **out,
                          uint64_t deadline_ms, int64_t wait_ms);

/* The thread's slot map, read first when it has none yet or when it is
 * due for a refresh, by deadline_ms. NULL when no node answered CLUSTER
 * SLOTS. The map stays the thread's: valid until its next call here. */
const redis_slot_map *redis_nodes_map(redis_nodes *nd, uint64_t deadline_ms);

/* After a WAIT sent by redis_nodes_pipeline: the replicas that acknowledged
 * the writes of key's slot (those of the node they were last sent to; a
 * WAIT goes to each node on its own, so that a node without replicas does
 * not fail the writes that went elsewhere). -1 when that node's WAIT
 * failed, or its connection broke with writes unacknowledged, or no write
 * of the slot is known. */
long long redis_nodes_acks(const redis_nodes *nd, const char *key, size_t len);

/* Runs one command on the node at host:port (as the map names it), not
 * routed: SCAN, which walks one node's keys. The reply in *out (free it;
 * an error reply as redis_nodes_pipeline makes them when the node cannot
 * be reached by deadline_ms, 0: REDIS_TIMEOUT_MS from now). RC_NOMEM when
 * out of memory. */
rc_t redis_nodes_at(redis_nodes *nd, const char *host, int port, const redis_cmd *cmd,
                    redisReply **out, uint64_t deadline_ms);

/* The prefix of the error replies redis_nodes makes itself. */
#define REDIS_NODES_ERR "SESSIOND "

#endif
