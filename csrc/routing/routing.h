/*
** Shard routing for other C modules (the bulk buffer's sort by shard): the
** parameters of an index's routing function, read once from a Lua table, and
** the shard of one document from its _id / routing text.
*/
#ifndef ESPIPE_ROUTING_H
#define ESPIPE_ROUTING_H

#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"

enum route_func { ROUTE_LEGACY, ROUTE_MODULO };

typedef struct route_params {
    enum route_func func;
    int32_t shards;
    int32_t routing_shards;   /* legacy only */
    int32_t routing_factor;   /* routing_shards / shards */
    int32_t partition_size;   /* 1 = not partitioned */
} route_params;

enum route_status { ROUTE_OK = 0, ROUTE_MISSING = 1, ROUTE_BAD_ID = -1, ROUTE_BAD_ROUTING = -2 };

/* Reads { shards =, routing_shards =, func =, partition_size =, es_major = } at idx; raises when invalid. */
int espipe_route_params(lua_State *L, int idx, route_params *p);

/*
** The shard of a document whose _id (id == NULL: none) and routing value
** (routing == NULL: none) are UTF-8 texts. ROUTE_OK with *shard set;
** ROUTE_MISSING when the index needs a value that is absent; ROUTE_BAD_ID /
** ROUTE_BAD_ROUTING when that text is not valid UTF-8 (byte offset in *bad).
*/
int espipe_route_shard(const route_params *p, const char *id, size_t id_len,
                       const char *routing, size_t routing_len, int32_t *shard, size_t *bad);

#endif
