-- The bulk indexer's state machine without a server: a scripted transport
-- answers each _bulk request according to what the documents ask for
-- (doc.fail = status, doc.fail_times = how many attempts fail first), so the
-- expected outcome of every document is written in the document itself.
local client_mod = require("espipe.client")
local errors = require("espipe.client.errors")
local json = require("espipe.json")
local script_transport = require("spec.client.support.script_transport")

-- The indexer hands the transport its espipe.bulk buffer as the body (the
-- seam allows it); the scripted transport reads bodies as strings, so take
-- the bytes as they are at submit time, as a real transport sends them.
local script = {}
function script.new(...)
  local t = script_transport.new(...)
  local submit = t.submit
  t.buffers, t.n_buffers = {}, 0
  t.submit = function(self, req)
    if type(req.body) == "userdata" then
      if not t.buffers[req.body] then t.buffers[req.body], t.n_buffers = true, t.n_buffers + 1 end
      local copy = {}
      for k, v in pairs(req) do copy[k] = v end
      copy.body = req.body:body()
      req = copy
    end
    return submit(self, req)
  end
  return t
end

local fixtures = require("spec.client.support.fixtures")
local tmpname, read_lines = fixtures.tmpname, fixtures.read_lines


-- Answers a _bulk body item by item; seen[id] counts attempts per document.
local function bulk_responder(seen, opts)
  opts = opts or {}
  return function(req)
    if opts.whole then
      local r = opts.whole(req)
      if r then return r end
    end
    local items, any_error = {}, false
    local lines = {}
    for line in req.body:gmatch("[^\n]+") do lines[#lines + 1] = line end
    local i = 1
    while i <= #lines do
      local action = json.decode(lines[i])
      local op, meta = next(action)
      local doc = op ~= "delete" and json.decode(lines[i + 1]) or {}
      i = i + (op ~= "delete" and 2 or 1)
      local id = meta._id
      seen[id] = (seen[id] or 0) + 1
      local fail = doc.fail
      if fail and (doc.fail_times == nil or seen[id] <= doc.fail_times) then
        any_error = true
        local etype = fail == 429 and "es_rejected_execution_exception" or "mapper_parsing_exception"
        items[#items + 1] = '{"' .. op .. '":{"_id":"' .. id .. '","status":' .. fail
          .. ',"error":{"type":"' .. etype .. '","reason":"bad \\"' .. id .. '\\""}}}'
      else
        items[#items + 1] = '{"' .. op .. '":{"_id":"' .. id .. '","status":201,"result":"created"}}'
      end
    end
    return { status = 200, body = '{"took":1,"errors":' .. tostring(any_error) .. ',"items":['
      .. table.concat(items, ",") .. "]}" }
  end
end

local function check_invariant(stats, dead_path)
  assert.are.equal(stats.added, stats.ok + stats.failed)
  local lines = dead_path and read_lines(dead_path) or {}
  if dead_path then assert.are.equal(stats.failed, #lines) end
  local ids = {}
  for _, l in ipairs(lines) do
    local rec = assert(json.decode(l))
    local _, meta = next(rec.action)
    assert.is_nil(ids[meta._id], "dead-lettered twice: " .. tostring(meta._id))
    ids[meta._id] = rec
  end
  return ids
end

describe("bulk indexer", function()
  local dead
  before_each(function() dead = tmpname() end)
  after_each(function() os.remove(dead); os.remove(dead .. ".bulk") end)

  it("batches by document count and acknowledges every document", function()
    local seen = {}
    local t = script.new(bulk_responder(seen))
    local c = client_mod.new{ transport = t }
    local bi = c:bulk_indexer{ index = "docs", batch_docs = 1000, dead_letter = dead }
    for i = 1, 2500 do bi:index({ n = i }, { id = "d" .. i }) end
    local stats = bi:close()
    assert.are.equal(2500, stats.added)
    assert.are.equal(2500, stats.ok)
    assert.are.equal(2500, stats.created)
    assert.are.equal(0, stats.failed)
    assert.are.equal(3, stats.requests)
    assert.are.equal(3, #t.sent)
    assert.are.equal("/docs/_bulk", t.sent[1].path)
    assert.are.equal("filter_path=errors,items.*.status,items.*.error,items.*.result", t.sent[1].query)
    assert.are.equal("application/x-ndjson", t.sent[1].headers["Content-Type"])
    for i = 1, 2500 do assert.are.equal(1, seen["d" .. i]) end
    check_invariant(stats, dead)
  end)

  it("leaves no empty dead letter behind, and keeps one that existed before", function()
    local function exists(path)
      local f = io.open(path)
      if f then f:close() end
      return f ~= nil
    end
    local t = script.new(bulk_responder({}))
    local c = client_mod.new{ transport = t }
    local bi = c:bulk_indexer{ index = "docs", dead_letter = dead, dead_letter_bulk = dead .. ".bulk" }
    assert.is_true(exists(dead))   -- opened up front: an unwritable path fails before any document
    bi:index({ n = 1 }, { id = "a" })
    assert.are.equal(0, bi:close().failed)
    assert.is_false(exists(dead))
    assert.is_false(exists(dead .. ".bulk"))
    local f = assert(io.open(dead, "w"))
    f:close()
    bi = c:bulk_indexer{ index = "docs", dead_letter = dead }
    bi:index({ n = 2 }, { id = "b" })
    bi:close()
    assert.is_true(exists(dead))
    os.remove(dead)
  end)

  it("returns nil, err (not raises) when a dead-letter file cannot be opened, and leaves nothing open", function()
    local c = client_mod.new{ transport = script.new(bulk_responder({})) }
    local bad = "/nonexistent-dir/dl.ndjson"
    local bi, err = c:bulk_indexer{ index = "docs", dead_letter = bad }
    assert.is_nil(bi)
    assert.equal("output", err.kind)
    assert.matches("cannot open dead letter " .. bad, tostring(err), 1, true)
    bi, err = c:bulk_indexer{ index = "docs", dead_letter = dead, dead_letter_bulk = bad }
    assert.is_nil(bi)
    assert.matches("cannot open dead letter " .. bad, tostring(err), 1, true)
    local f = io.open(dead)
    if f then f:close() end
    assert.is_nil(f) -- the first file, opened before the second failed, is closed and removed
  end)

  it("stops with an output error when the dead letter cannot be written (disk full): no failure goes unrecorded silently", function()
    local f = io.open("/dev/full", "ab")
    if not f then return pending("no /dev/full here") end
    f:close()
    local c = client_mod.new{ transport = script.new(bulk_responder({})) }
    local bi = assert(c:bulk_indexer{ index = "docs", batch_docs = 10, dead_letter = "/dev/full" })
    local refused
    for i = 1, 50 do
      local ok, err = bi:index({ n = i, fail = 400 }, { id = "f" .. i })
      if not ok then refused = err break end
    end
    local stats, halt = bi:close()
    assert.is_truthy(refused, "the indexer went on taking documents after losing dead-letter records")
    assert.equal("output", refused.kind)
    assert.matches("cannot write the dead letter", tostring(refused), 1, true)
    assert.equal(refused, halt)
    assert.is_true(stats.failed >= 10)
  end)

  it("batches by bytes", function()
    local t = script.new(bulk_responder({}))
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", batch_bytes = 1000 }
    local pad = string.rep("p", 80)
    for i = 1, 100 do bi:index({ pad = pad }, { id = "b" .. i }) end
    bi:close()
    for _, s in ipairs(t.sent) do
      -- a batch is sent once it reaches batch_bytes: at most one item over
      assert.is_true(#s.body < 1000 + 130)
    end
    assert.is_true(#t.sent >= 10)
  end)

  it("never has more than `concurrency` requests in flight", function()
    local t
    local max_seen = 0
    t = script.new(function(req)
      max_seen = math.max(max_seen, #t.queue + 1)
      return bulk_responder({})(req)
    end, 64, 3)
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", batch_docs = 10, concurrency = 3 }
    for i = 1, 500 do bi:index({ n = i }, { id = "c" .. i }) end
    bi:close()
    assert.is_true(max_seen <= 3, "max in flight " .. max_seen)
    assert.are.equal(3, max_seen)
  end)

  it("retries rejected items only, then acknowledges them", function()
    local seen = {}
    local t = script.new(bulk_responder(seen))
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", batch_docs = 50,
      retries = 3, backoff = { base = 0.01, max = 0.05 }, dead_letter = dead }
    for i = 1, 200 do
      bi:index({ n = i, fail = (i % 7 == 0) and 429 or nil, fail_times = 2 }, { id = "r" .. i })
    end
    local stats = bi:close()
    assert.are.equal(200, stats.ok)
    assert.are.equal(0, stats.failed)
    for i = 1, 200 do
      assert.are.equal(i % 7 == 0 and 3 or 1, seen["r" .. i], "attempts of r" .. i)
    end
    assert.are.equal(2 * math.floor(200 / 7), stats.retried)
    check_invariant(stats, dead)
  end)

  it("dead-letters permanent failures once, with action, source, status, error and attempts", function()
    local seen, reported = {}, {}
    local t = script.new(bulk_responder(seen))
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", batch_docs = 30, retries = 2,
      backoff = { base = 0.001 }, dead_letter = dead, dead_letter_bulk = dead .. ".bulk",
      on_error = function(item) reported[#reported + 1] = item end }
    for i = 1, 100 do
      local fail = (i % 10 == 0) and 400 or (i % 25 == 0) and 429 or nil
      bi:index({ n = i, fail = fail }, { id = "e" .. i })
    end
    local stats = bi:close()
    -- 400 for 10,20,...,100 (10 docs); 429 forever for 25 and 75 (50 and 100 are 400)
    assert.are.equal(12, stats.failed)
    assert.are.equal(88, stats.ok)
    local ids = check_invariant(stats, dead)
    for i = 1, 100 do
      local rec = ids["e" .. i]
      if i % 10 == 0 then
        assert.are.equal(400, rec.status)
        assert.are.equal(1, rec.attempts)
        assert.are.equal("mapper_parsing_exception", rec.error.type)
        assert.are.equal('bad "e' .. i .. '"', rec.error.reason)
        assert.are.same({ n = i, fail = 400 }, rec.source)
        assert.are.same({ index = { _index = "x", _id = "e" .. i } }, rec.action)
      elseif i % 25 == 0 then
        assert.are.equal(429, rec.status)
        assert.are.equal(3, rec.attempts)
        assert.are.equal(3, seen["e" .. i])
      else
        assert.is_nil(rec)
      end
    end
    assert.are.equal(12, #reported)
    -- the bulk companion is the failed documents' two _bulk lines
    local bulk = read_lines(dead .. ".bulk")
    assert.are.equal(24, #bulk)
    assert.are.same({ index = { _index = "x", _id = "e10" } }, json.decode(bulk[1]))
  end)

  it("retries a whole batch after 503 and after an unreadable 200", function()
    local n = 0
    local seen = {}
    local answer = bulk_responder(seen)
    local t = script.new(function(req)
      n = n + 1
      if n == 1 then return { status = 503, body = '{"error":{"type":"x","reason":"busy"},"status":503}' } end
      if n == 2 then return { status = 200, body = '{"took":1,"errors":false,"items":[{"index":{"status":201}}' } end
      if n == 3 then return { status = 200, body = '{"took":1,"errors":false,"items":[]}' } end
      return answer(req)
    end)
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", retries = 5,
      backoff = { base = 0.001 }, dead_letter = dead }
    for i = 1, 10 do bi:index({ n = i }, { id = "w" .. i }) end
    local stats = bi:close()
    assert.are.equal(10, stats.ok)
    assert.are.equal(4, stats.requests)
    for i = 1, 10 do assert.are.equal(1, seen["w" .. i]) end
    check_invariant(stats, dead)
  end)

  it("retries a refused connection once the cluster has answered for retry_for, then dead-letters", function()
    local t = script.new(function()
      return { err = errors.new{ kind = "transport", code = "connect", message = "connection refused",
                                 cluster_reached = true } }
    end)
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", batch_docs = 7, retry_for = 30,
      backoff = { base = 0.5, max = 4 }, dead_letter = dead }
    local t0 = t.clock
    for i = 1, 20 do bi:index({ n = i }, { id = "t" .. i }) end
    local stats = bi:close()
    assert.are.equal(20, stats.failed)
    assert.are.equal(0, stats.ok)
    local ids = check_invariant(stats, dead)
    assert.are.equal("transport", ids.t1.error.type)
    -- by time, not by count: many attempts, spread over the 30 s budget
    assert.is_true(ids.t1.attempts > 6, "attempts " .. ids.t1.attempts)
    assert.is_true(t.clock - t0 >= 30 and t.clock - t0 < 35, "retried for " .. (t.clock - t0) .. " s")
  end)

  it("still honours the deprecated retries = N as a cap on attempts", function()
    local t = script.new(function() return { status = 503, body = '{"error":"busy"}' } end)
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", retries = 2, dead_letter = dead }
    for i = 1, 3 do bi:index({ n = i }, { id = "r" .. i }) end
    local stats = bi:close()
    assert.are.equal(3, stats.failed)
    assert.are.equal(3, #t.sent)
    assert.are.equal(3, check_invariant(stats, dead).r1.attempts)
  end)

  it("stops at once on a refused connection before the cluster ever answered: nothing dead-lettered", function()
    local t = script.new(function()
      return { err = errors.new{ kind = "transport", code = "connect", message = "connection refused",
                                 host = "http://127.0.0.1:1" } }
    end)
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", batch_docs = 7, dead_letter = dead }
    local ok, err
    for i = 1, 20 do
      ok, err = bi:index({ n = i }, { id = "t" .. i })
      if not ok then break end
    end
    assert.is_nil(ok)
    assert.are.equal("systemic", err.kind)
    assert.truthy(tostring(err):find("127.0.0.1:1", 1, true), tostring(err))
    local stats, cerr = bi:close()
    assert.are.equal(err, cerr)
    assert.are.equal(0, stats.failed)
    assert.are.equal(stats.added, stats.ok + stats.failed + stats.unsent)
    assert.are.equal(1, #t.sent)
    assert.is_nil(io.open(dead), "a dead letter was left behind")
  end)

  it("stops at once on 401/403, dead-letters on another 4xx, with the reason", function()
    for _, status in ipairs{ 401, 403 } do
      local t = script.new(function()
        return { status = status, body = '{"error":{"type":"security_exception","reason":'
          .. '"action [indices:data/write/bulk] is unauthorized"},"status":' .. status .. '}' }
      end)
      local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", dead_letter = dead }
      for i = 1, 5 do bi:index('{"raw":' .. i .. '}', { id = "f" .. i }) end
      local stats, err = bi:close()
      assert.are.equal("systemic", err.kind)
      assert.are.equal(status, err.status)
      assert.are.equal(0, stats.failed)
      assert.are.equal(5, stats.unsent)
      assert.is_nil(io.open(dead))
    end
    local t = script.new(function()
      return { status = 400,
               body = '{"error":{"type":"illegal_argument_exception","reason":"bad request"},"status":400}' }
    end)
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", dead_letter = dead }
    for i = 1, 5 do bi:index('{"raw":' .. i .. '}', { id = "f" .. i }) end
    local stats, err = bi:close()
    assert.is_nil(err)
    assert.are.equal(5, stats.failed)
    local ids = check_invariant(stats, dead)
    assert.are.equal("illegal_argument_exception", ids.f3.error.type)
    assert.are.same({ raw = 3 }, ids.f3.source)
    assert.are.equal(1, #t.sent)
  end)

  it("splits on 413 down to single documents", function()
    local seen = {}
    local answer = bulk_responder(seen)
    local t = script.new(function(req)
      if #req.body > 300 or req.body:find("huge", 1, true) then return { status = 413, body = "" } end
      return answer(req)
    end)
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", batch_docs = 40, dead_letter = dead }
    for i = 1, 40 do bi:index({ n = i, huge = (i == 17) or nil }, { id = "s" .. i }) end
    local stats = bi:close()
    assert.are.equal(39, stats.ok)
    assert.are.equal(1, stats.failed)
    local ids = check_invariant(stats, dead)
    assert.are.equal(413, ids.s17.status)
  end)

  it("sends a batch older than flush_interval at the next call", function()
    local t = script.new(bulk_responder({}))
    local c = client_mod.new{ transport = t }
    local bi = c:bulk_indexer{ index = "x", flush_interval = 1 }
    bi:index({ a = 1 }, { id = "1" })
    assert.are.equal(0, #t.sent)
    t.clock = t.clock + 2
    bi:tick()
    assert.are.equal(1, #t.sent)
    bi:close()
  end)

  it("writes create, update and delete actions", function()
    local t = script.new(function(req)
      local n = select(2, req.body:gsub("\n", "\n"))
      return { status = 200, body = '{"errors":false,"items":[{"create":{"status":201}},'
        .. '{"update":{"status":200,"result":"noop"}},{"delete":{"status":200}}]}', n = n }
    end)
    local bi = client_mod.new{ transport = t }:bulk_indexer{}
    bi:create({ a = 1 }, { index = "i", id = "1" })
    bi:update({ doc = { a = 2 }, doc_as_upsert = true }, { index = "i", id = "2", retry_on_conflict = 3 })
    bi:delete({ index = "i", id = 3, routing = "r" })
    local stats = bi:close()
    assert.are.equal('{"create":{"_index":"i","_id":"1"}}\n{"a":1}\n'
      .. '{"update":{"_index":"i","_id":"2","retry_on_conflict":3}}\n{"doc":{"a":2},"doc_as_upsert":true}\n'
      .. '{"delete":{"_index":"i","_id":"3","routing":"r"}}\n', t.sent[1].body)
    assert.are.equal("/_bulk", t.sent[1].path)
    assert.are.equal(1, stats.created)
    assert.are.equal(1, stats.noop)
    assert.are.equal(1, stats.deleted)
  end)

  it("raises on wrong arguments and after close", function()
    local c = client_mod.new{ transport = script.new(bulk_responder({})) }
    assert.has_error(function() c:bulk_indexer{ batch_docs = 0 } end, "bulk_indexer: batch_docs must be a positive integer")
    assert.has_error(function() c:bulk_indexer{ concurency = 2 } end,
      "bulk_indexer: unknown option 'concurency' (did you mean 'concurrency'?)")
    local bi = c:bulk_indexer{ index = "x" }
    assert.has_error(function() bi:index(42) end, "bulk_indexer: document must be a table or a raw JSON string, got number")
    assert.has_error(function() bi:index('{"a":\n1}') end)
    assert.has_error(function() bi:index({}, { idd = 1 }) end, "bulk_indexer: unknown meta key 'idd'")
    assert.has_error(function() bi:delete({}) end, "bulk_indexer: delete needs meta.id")
    bi:close()
    assert.has_error(function() bi:index({}) end, "bulk_indexer: already closed")
  end)
  it("sends its buffers as the request body and reuses a bounded set of them", function()
    local t = script.new(bulk_responder({}), 64, 2)
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", batch_docs = 20, concurrency = 3 }
    for i = 1, 2000 do bi:index({ n = i }, { id = "u" .. i }) end
    local stats = bi:close()
    assert.are.equal(2000, stats.ok)
    assert.are.equal(100, #t.sent)
    -- 100 requests, but never more buffers than in flight + pooled + the one being filled
    assert.is_true(t.n_buffers <= 3 + 4 + 1, "distinct buffers " .. t.n_buffers)
  end)

  it("re-sends only the rejected items of a batch, by position, and the whole batch after a 503", function()
    local seen, n = {}, 0
    local answer = bulk_responder(seen)
    local t = script.new(function(req)
      n = n + 1
      if n == 2 then return { status = 503, body = '{"error":{"type":"x","reason":"busy"},"status":503}' } end
      return answer(req)
    end)
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", batch_docs = 10, retries = 4,
      backoff = { base = 0.001 }, dead_letter = dead }
    for i = 1, 10 do
      local fail = (i == 3 or i == 8) and ',"fail":429,"fail_times":1' or ""
      bi:index('{"n":' .. i .. fail .. '}', { id = "k" .. i })
    end
    local stats = bi:close()
    assert.are.equal(10, stats.ok)
    -- request 2 holds exactly the two rejected items, in their order; request 3 is the same bytes again
    assert.are.equal('{"index":{"_id":"k3"}}\n{"n":3,"fail":429,"fail_times":1}\n'
      .. '{"index":{"_id":"k8"}}\n{"n":8,"fail":429,"fail_times":1}\n', t.sent[2].body)
    assert.are.equal(t.sent[2].body, t.sent[3].body)
    assert.are.equal(3, #t.sent)
    assert.are.equal(2, seen.k3)
    check_invariant(stats, dead)
  end)

  it("appends raw action lines, ships a partial batch on demand, and can ask for the full response", function()
    local t = script.new(bulk_responder({}))
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", filter_path = false }
    bi:raw('{"index":{"_id":"r1"}}', '{"a":1}')
    bi:raw('{"delete":{"_id":"r2"}}')
    bi:ship()
    assert.are.equal(1, #t.sent)
    assert.are.equal('{"index":{"_id":"r1"}}\n{"a":1}\n{"delete":{"_id":"r2"}}\n', t.sent[1].body)
    assert.is_nil(t.sent[1].query)
    local stats = bi:close()
    assert.are.equal(2, stats.ok)
    assert.has_error(function() bi:ship() end, "bulk_indexer: already closed")
  end)

  it("raises, naming the problem, on input the builder refuses", function()
    local bi = client_mod.new{ transport = script.new(bulk_responder({})) }:bulk_indexer{ index = "x" }
    assert.has_error(function() bi:index({}, { id = "1", _id = "2" }) end,
      "bulk_indexer: index: metadata has both _id and its alias")
    assert.has_error(function() bi:raw('{"upsert":{}}', "{}") end)
    assert.has_error(function() bi:index({ 1, 2 }, { id = "a" }) end,
      "bulk_indexer: index: the source must be a JSON object, but the table encodes as an array")
    local stats = bi:close()
    assert.are.equal(0, stats.added)
  end)
  it("hands each document's token to on_batch once, when it settles", function()
    local seen, calls = {}, {}
    local t = script.new(bulk_responder(seen))
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", batch_docs = 30, retries = 3,
      backoff = { base = 0.001 }, dead_letter = dead,
      on_batch = function(info) calls[#calls + 1] = info end }
    local metas = {}
    for i = 1, 100 do
      local fail = (i % 9 == 0) and 429 or (i % 25 == 0) and 400 or nil
      metas[i] = { id = "t" .. i, token = i }
      bi:index({ n = i, fail = fail, fail_times = fail == 429 and 1 or nil }, metas[i])
    end
    local stats = bi:close()
    assert.are.equal(100, stats.added)
    assert.are.equal(4, stats.failed) -- 25, 50, 75, 100
    local where, ok, failed = {}, 0, 0
    for k, info in ipairs(calls) do
      ok, failed = ok + info.ok, failed + info.failed
      for _, tok in ipairs(info.tokens) do
        assert.is_nil(where[tok], "token " .. tok .. " handed twice")
        where[tok] = k
      end
    end
    for i = 1, 100 do assert.is_not_nil(where[i], "token " .. i .. " never handed back") end
    assert.are.equal(stats.ok, ok)
    assert.are.equal(stats.failed, failed)
    -- the dead-lettered ones are named among them
    local lost = {}
    for _, info in ipairs(calls) do
      for _, tok in ipairs(info.failed_tokens) do lost[#lost + 1] = tok end
    end
    table.sort(lost)
    assert.are.same({ 25, 50, 75, 100 }, lost)
    -- a retried document settles in a later call than the rest of its first batch
    assert.is_true(where[9] > where[8])
    -- the caller's meta is left as it was, and the token never reaches the cluster
    assert.are.equal(9, metas[9].token)
    for _, s in ipairs(t.sent) do assert.is_nil(s.body:find("token", 1, true)) end
    check_invariant(stats, dead)
  end)

  it("gives on_batch tokens to raw actions and to the items a C appender adds (fill_token)", function()
    local calls = {}
    local t = script.new(bulk_responder({}))
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", batch_docs = 4, dead_letter = dead,
      on_batch = function(info) calls[#calls + 1] = info end }
    assert.is_true(bi:raw('{"index":{"_id":"r1"}}', '{"n":1}', "raw"))
    local core = require "espipe.core"
    local appender = core.bulk_lines_new { op = "index", check = "object", max_line = 1000 }
    local text = '{"n":2}\n{"n":3}\n{"n":4,"fail":400}\n{"n":5}\n'
    local pos = 1
    while pos <= #text do pos = bi:fill_token("lines", core.bulk_lines_append, appender, text, pos, {}) end
    local stats = bi:close()
    assert.are.equal(5, stats.added)
    local got, lost = {}, {}
    for _, info in ipairs(calls) do
      for _, tok in ipairs(info.tokens) do got[tok] = (got[tok] or 0) + 1 end
      for _, tok in ipairs(info.failed_tokens) do lost[#lost + 1] = tok end
    end
    assert.are.same({ raw = 1, lines = 4 }, got)
    assert.are.same({ "lines" }, lost)
    check_invariant(stats, dead)
  end)

  it("counts a 409 on create as done with conflict_ok, and dead-letters it without", function()
    for _, conflict_ok in ipairs{ true, false } do
      local t = script.new(bulk_responder({}))
      local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", conflict_ok = conflict_ok or nil,
                                                               dead_letter = dead }
      for i = 1, 10 do bi:create({ n = i, fail = (i <= 3) and 409 or nil }, { id = "c" .. i }) end
      local stats = bi:close()
      assert.are.equal(10, stats.added)
      if conflict_ok then
        assert.are.same({ 10, 0, 3 }, { stats.ok, stats.failed, stats.conflicts })
      else
        assert.are.same({ 7, 3 }, { stats.ok, stats.failed })
      end
      check_invariant(stats, dead)
      os.remove(dead)
    end
  end)
end)
