-- espipe route: print the shard Elasticsearch routes each id (or routing value) to.
local args = require "espipe.cli.args"

local usage = [[
usage: espipe route --shards N [--routing-shards M] [--partition-size P]
                    [--routing R] [--modulo] [--es-major V] ID...

Prints "ID<TAB>SHARD" for each id, computed exactly as Elasticsearch does
(Murmur3 over the UTF-16 code units of the routing value, seed 0).
  --routing-shards M   index.number_of_routing_shards (default: Elasticsearch's
                       default for N shards on ES >= 7, N on ES 6)
  --partition-size P   index.routing_partition_size (needs --routing)
  --routing R          route by R instead of the id (as the routing param)
  --modulo             the modulo function of indices created by ES >= 9.x
  --es-major V         major version the index was created with (default 8)]]

local spec = {
  shards = "number", routing_shards = "number", partition_size = "number",
  routing = "string", modulo = "boolean", es_major = "number",
}

local function run(argv)
  local opts, ids = args.parse(argv, spec)
  if not opts then
    io.stderr:write("espipe route: ", ids, "\n", usage, "\n")
    return 2
  end
  if not opts.shards or #ids == 0 then
    io.stderr:write(usage, "\n")
    return 2
  end
  local routing = require "espipe.routing"
  local routing_shards = opts.routing_shards
  if not routing_shards and not opts.modulo then
    routing_shards = routing.default_routing_shards(opts.shards, opts.es_major or 8)
  end
  for _, id in ipairs(ids) do
    local ok, shard = pcall(routing.shard, {
      id = id, routing = opts.routing, shards = opts.shards,
      routing_shards = routing_shards, partition_size = opts.partition_size,
      func = opts.modulo and "modulo" or "legacy",
    })
    if not ok then
      io.stderr:write("espipe route: ", tostring(shard), "\n")
      return 2
    end
    io.stdout:write(id, "\t", shard, "\n")
  end
  return 0
end

return { summary = "print the shard of each document id", usage = usage, flags = spec, run = run }
