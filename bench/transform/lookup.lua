-- Lookup enrichment (issue 18 point 6): a transform that needs one HTTP
-- lookup per document from a local nginx location answering after 5 ms
-- (ngx.sleep, loopback), per-document sequential lookups vs a batch
-- transform with ctx:all, loading the same NDJSON into a blackhole dev
-- server in the same run. Prints docs/s of each and their ratio.
--   make && lua5.4 bench/transform/lookup.lua [seq_docs=400] [batch_docs=20000] [concurrency=128]
package.path = "./lua/?.lua;./lua/?/init.lua;./spec/?.lua;" .. package.path
package.cpath = "./build/5.4/?.so;" .. package.cpath

local nginx = require "support.nginx"
local devserver = require "support.devserver"
local espipe = require "espipe"
local json = require "espipe.json"
local clock = require("espipe.transport.curl").clock

local SEQ_DOCS = tonumber(arg[1]) or 400
local BATCH_DOCS = tonumber(arg[2]) or 20000
local CONCURRENCY = tonumber(arg[3]) or 128

local function lookup_conf(port)
  return table.concat({
    "load_module /usr/lib/nginx/modules/ndk_http_module.so;",
    "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;",
    "worker_processes 1; pid logs/nginx.pid; error_log logs/error.log; events { worker_connections 4096; }",
    "http { access_log off; keepalive_requests 1000000;",
    "  server { listen 127.0.0.1:" .. port .. ";",
    "    location /lookup { default_type application/json;",
    "      content_by_lua_block { ngx.sleep(0.005) ngx.print('{\"team\":\"t', ngx.var.arg_id, '\"}') } } } }",
  }, "\n")
end

local function write_docs(path, n)
  local f = assert(io.open(path, "wb"))
  for i = 1, n do f:write('{"id":"doc-', i, '","n":', i, ',"message":"request ', i, ' served"}\n') end
  f:close()
end

-- One lookup per document, waited for before the next.
local function sequential(base)
  return function(doc, _, ctx)
    local res, err = ctx:http { url = base .. "/lookup?id=" .. doc.n }
    if not res then error(err) end
    doc.team = json.decode(res.body).team
    return doc
  end
end

-- The batch's lookups all in flight together (up to concurrency).
local function batched(base)
  return { size = 1000, concurrency = CONCURRENCY, batch = function(docs, ctx)
    local reqs = {}
    for i, doc in ipairs(docs) do reqs[i] = { url = base .. "/lookup?id=" .. doc.n } end
    local results, errs = ctx:all(reqs)
    local out = {}
    for i, doc in ipairs(docs) do
      if results[i] then
        doc.team = json.decode(results[i].body).team
        out[i] = doc
      end
    end
    return out, errs
  end }
end

local function run(client, input, n, transform)
  local t0, c0 = clock(), os.clock()
  local s, err = espipe.load { client = client, input = input, index = "bench", transform = transform,
    refresh = false }
  local elapsed, cpu = clock() - t0, os.clock() - c0
  assert(s, tostring(err))
  assert(s.ok == n and s.transform_errors == 0, "not every document was enriched and indexed")
  return n / elapsed, elapsed, cpu
end

local tmp, results = os.tmpname(), {}
local app = nginx.start { conf = lookup_conf }
local es = devserver.start { blackhole = true }
local ok, err = pcall(function()
  local client = espipe.client { hosts = { es.url } }
  local base = app.url
  -- (0 documents skips a run: bench/transform/instructions.sh counts each alone)
  if SEQ_DOCS > 0 then
    write_docs(tmp, SEQ_DOCS)
    local seq, seq_s, seq_cpu = run(client, tmp, SEQ_DOCS, sequential(base))
    print(string.format("sequential: %d docs in %.2f s, %.0f docs/s, client CPU %.0f us/doc", SEQ_DOCS, seq_s, seq,
      seq_cpu / SEQ_DOCS * 1e6))
    results.seq = seq
  end
  if BATCH_DOCS > 0 then
    write_docs(tmp, BATCH_DOCS)
    local bat, bat_s, bat_cpu = run(client, tmp, BATCH_DOCS, batched(base))
    print(string.format("batch (size 1000, concurrency %d): %d docs in %.2f s, %.0f docs/s, client CPU %.0f us/doc",
      CONCURRENCY, BATCH_DOCS, bat_s, bat, bat_cpu / BATCH_DOCS * 1e6))
    results.batch = bat
  end
  if results.seq and results.batch then print(string.format("batch / sequential: %.1fx", results.batch / results.seq)) end
  client:close()
end)
os.remove(tmp)
es.stop()
app.stop()
if not ok then error(err, 0) end
