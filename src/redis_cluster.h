/* redis_cluster.h -- the pure parts of a Redis Cluster client: key slots
 * (CRC16 with hash tags), MOVED/ASK redirections, and the slot map read from
 * CLUSTER SLOTS. No I/O: the network client (store_redis.c) feeds them the
 * replies hiredis parsed.
 *
 * Hosts in replies come in three kinds (Redis 7.0, by the nodes'
 * cluster-preferred-endpoint-type):
 *   a name or address   "10.0.0.5", "::1" (IPv6 without brackets), "node-3.example"
 *   "the same host"     an empty host (MOVED 12182 :6379) or a NULL one in
 *                       CLUSTER SLOTS (unknown-endpoint): connect to the host
 *                       of the node that answered, on the port given
 *   "unknown"           "?" (hostname preferred but the node announces
 *                       none): not reachable by name; CLUSTER SLOTS may still
 *                       carry its "ip" in the metadata (redis_node.ip) */
#ifndef REDIS_CLUSTER_H
#define REDIS_CLUSTER_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include "rc.h"

#define REDIS_CLUSTER_SLOTS 16384
#define REDIS_CLUSTER_NODES_MAX 64     /* distinct primaries in one slot map */
#define REDIS_CLUSTER_HOST_MAX 255     /* bytes of a host, without the NUL */
#define REDIS_CLUSTER_ID_LEN 40        /* a node id: 40 lowercase hex digits */
#define REDIS_CLUSTER_IP_MAX 45        /* INET6_ADDRSTRLEN - 1 */
#define REDIS_SLOT_NONE 0xFF           /* redis_slot_map.slot_node: no primary */

typedef enum redis_host_kind {
    REDIS_HOST_NAME = 0, /* host holds a name or an address */
    REDIS_HOST_SAME,     /* "" or NULL: the host of the node that answered */
    REDIS_HOST_UNKNOWN   /* "?": no endpoint of the preferred type */
} redis_host_kind;

typedef enum redis_redirect_type {
    REDIS_REDIRECT_MOVED = 0, /* the slot lives there now: update the map */
    REDIS_REDIRECT_ASK        /* this command only: ASKING, then the command, there */
} redis_redirect_type;

typedef struct redis_redirect {
    redis_redirect_type type;
    uint16_t slot;                           /* 0..16383 */
    redis_host_kind kind;
    char host[REDIS_CLUSTER_HOST_MAX + 1];   /* REDIS_HOST_NAME: the host; else "" */
    int port;                                /* 1..65535 */
} redis_redirect;

typedef struct redis_node {
    redis_host_kind kind;
    char host[REDIS_CLUSTER_HOST_MAX + 1];   /* REDIS_HOST_NAME: the host; else "" */
    int port;                                /* 1..65535 */
    char id[REDIS_CLUSTER_ID_LEN + 1];       /* "" when the reply names none */
    char ip[REDIS_CLUSTER_IP_MAX + 1];       /* metadata "ip" (Redis 7), or "" */
} redis_node;

/* Which primary serves each slot. Nodes are the distinct primaries, each
 * owning at least one slot, in order of first appearance; one node is one
 * (kind, host, port). About 38 KB: allocate it, do not put it on a stack. */
typedef struct redis_slot_map {
    size_t nnodes;
    redis_node nodes[REDIS_CLUSTER_NODES_MAX];
    uint8_t slot_node[REDIS_CLUSTER_SLOTS]; /* index into nodes, or REDIS_SLOT_NONE */
    size_t covered;                         /* slots with a primary */
} redis_slot_map;

/* The slot of a key: CRC16 (XMODEM: polynomial 0x1021, initial value 0,
 * no reflection, no final xor) mod 16384, over the hash tag when there is
 * one -- the bytes between the first '{' and the first '}' after it, when
 * there is at least one -- else over the whole key. Any bytes, len 0 too. */
uint16_t redis_cluster_slot(const char *key, size_t len);

/* Parses the text of an error reply (hiredis's reply->str, reply->len,
 * without the leading '-'): exactly "MOVED <slot> <host>:<port>" or
 * "ASK <slot> <host>:<port>", single spaces, decimal numbers without sign or
 * leading zeros, slot 0..16383, port 1..65535. The host ends at the last
 * ':' (an IPv6 address comes without brackets) and is empty (REDIS_HOST_SAME),
 * "?" (REDIS_HOST_UNKNOWN), an IPv6 address (inet_pton), or at most 255
 * bytes of [A-Za-z0-9._-]. RC_OK with *out filled, else RC_INVALID (any
 * other error, such as TRYAGAIN, CLUSTERDOWN or READONLY, is not a
 * redirection). */
rc_t redis_cluster_redirect(const char *err, size_t len, redis_redirect *out);

/* Builds the slot map from the reply to CLUSTER SLOTS as hiredis 0.14 (RESP2)
 * returns it: an array of ranges [start, end, primary, replica...], each
 * node [host, port, id, metadata] where host is a string or NIL, port an
 * integer, and the optional id (40 hex digits) and metadata (an array of
 * name/value strings, Redis 7; "ip" is kept, other names are skipped) may
 * be missing (Redis < 7, < 4). Elements after the metadata are ignored.
 * Replicas are checked for shape (an array, host string or NIL, port
 * integer) but not kept. Slots no range lists are REDIS_SLOT_NONE (a cluster
 * being set up, or one that lost slots); an empty array is a valid map with
 * no slots.
 *
 * Refuses (RC_INVALID, a one-line reason in err): NULL anywhere, wrong
 * types, start > end or outside 0..16383, a slot in two ranges, a port
 * outside 1..65535, a host other than "", "?", an IPv6 address or 1..255
 * bytes of [A-Za-z0-9._-], an id other than 40 lowercase hex digits, an
 * "ip" that is not an IPv4 or IPv6 address, one address with two ids or one
 * id at two addresses, more than REDIS_CLUSTER_NODES_MAX primaries. *out is
 * overwritten either way; on refusal it is empty (no node, every slot
 * REDIS_SLOT_NONE). */
rc_t redis_cluster_map_from_slots(const redisReply *r, redis_slot_map *out, char *err,
                                  size_t errlen);

/* The primary serving slot (0..16383), or NULL when none does. */
const redis_node *redis_cluster_map_node(const redis_slot_map *m, uint16_t slot);

/* Applies a MOVED: slot is now served by (kind, host, port), a node added to
 * the map when it is new (with no id or ip; a host of kind other than
 * REDIS_HOST_NAME is stored as ""). The caller resolves REDIS_HOST_SAME to
 * the answering node's host first if it wants the map to hold names only.
 * RC_FULL when a new node would be one too many (the map is unchanged: time
 * to read CLUSTER SLOTS again), RC_INVALID (unchanged too) on a slot, port,
 * kind or host out of range (host NULL, or for REDIS_HOST_NAME not a host
 * redis_cluster_redirect would accept). A node left without slots stays in
 * nodes[] until the next redis_cluster_map_from_slots. */
rc_t redis_cluster_map_move(redis_slot_map *m, uint16_t slot, redis_host_kind kind,
                            const char *host, int port);

#endif
