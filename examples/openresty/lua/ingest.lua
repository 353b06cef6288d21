-- POST /ingest?index=NAME with an NDJSON body (one JSON object per line):
-- bulk-indexes every line through cosockets and answers with the outcome of
-- each: {"received":N,"indexed":N,"failed":[{"line":L,"status":S,"type":T,"reason":R}]}.
local json = require "espipe.json"
local espipe_client = require "espipe.client"

local M = {}

local function reply(status, body)
  ngx.status = status
  ngx.header["content-type"] = "application/json"
  ngx.say(json.encode(body))
end

function M.handle()
  if ngx.req.get_method() ~= "POST" then
    return reply(405, { error = "POST an NDJSON body" })
  end
  local index = ngx.var.arg_index
  if not index or index == "" then
    return reply(400, { error = "the index query parameter is required" })
  end
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    local file = ngx.req.get_body_file()
    if file then
      local f = assert(io.open(file, "rb"))
      body = f:read("*a")
      f:close()
    end
  end
  body = body or ""

  -- The indexer reports a failed item by its source text: map each source
  -- back to its line numbers (identical lines fail or pass alike).
  local lines_of, failed, received = {}, {}, 0
  local client = espipe_client.new{ hosts = { os.getenv("ES_URL") or "http://127.0.0.1:9200" } }
  local indexer = client:bulk_indexer{
    index = index, concurrency = 2, batch_bytes = 4 * 1024 * 1024,
    on_error = function(item)
      local q = lines_of[item.source or ""]
      local line = q and table.remove(q, 1)
      failed[#failed + 1] = { line = line or json.null, status = item.status or json.null,
                              type = item.type or json.null, reason = item.reason or json.null }
    end,
  }
  local lineno = 0
  for text in body:gmatch("([^\n]*)\n?") do
    lineno = lineno + 1
    if text:find("%S") then
      local doc, err = json.decode(text)
      if type(doc) ~= "table" then
        failed[#failed + 1] = { line = lineno, status = 400, type = "parse_error",
                                reason = err and tostring(err) or "not a JSON object" }
      else
        received = received + 1
        local q = lines_of[text]
        if not q then q = {}; lines_of[text] = q end
        q[#q + 1] = lineno
        indexer:index(text)
      end
    end
  end
  local stats = indexer:close()
  table.sort(failed, function(a, b)
    return (tonumber(a.line) or 0) < (tonumber(b.line) or 0)
  end)
  reply(#failed == 0 and 200 or 207, {
    received = received, indexed = stats.ok, failed = json.array(failed),
  })
end

return M
