-- Writes one _bulk body of `docs` index actions with ~350-byte sources.
-- usage: lua make_body.lua OUT DOCS INDEX ID_PREFIX
local out, docs, index, prefix = arg[1], tonumber(arg[2]), arg[3], arg[4]
assert(out and docs and index and prefix, "usage: make_body.lua OUT DOCS INDEX ID_PREFIX")
local f = assert(io.open(out, "wb"))
local parts = {}
for i = 1, docs do
  parts[#parts + 1] = string.format('{"index":{"_index":"%s","_id":"%s-%d"}}\n', index, prefix, i)
  parts[#parts + 1] = string.format(
    '{"@timestamp":"2024-05-%02dT12:%02d:%02dZ","host":"web-%03d.example.org","status":%d,"bytes":%d,'
    .. '"method":"GET","path":"/api/v1/items/%d/details","user_agent":"Mozilla/5.0 (X11; Linux x86_64) '
    .. 'AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36","latency_ms":%.3f,'
    .. '"tags":["bench","espipe","dev-server"],"message":"request served from cache shard %d"}\n',
    i % 28 + 1, i % 60, i % 60, i % 500, 200 + i % 5, 1000 + i * 7 % 90000, i, (i % 997) / 7, i % 16)
  if #parts >= 2000 then f:write(table.concat(parts)) parts = {} end
end
f:write(table.concat(parts))
f:close()
