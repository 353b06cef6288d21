-- Scripted updates on the dev server: _update with script, upsert and
-- scripted_upsert, ctx.op, bulk update items with scripts, stored scripts,
-- script_exception bodies, and version conflicts between concurrent
-- clients that retry_on_conflict absorbs.
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- n scripted increments of one document sent at once over `clients`
-- parallel connections (one curl, -Z); returns the count of each HTTP status
local function concurrent_increments(url, n, clients, retry)
  local cfg = os.tmpname()
  local f = assert(io.open(cfg, "w"))
  for _ = 1, n do
    f:write('url = "', url, "/cnt/_update/1?retry_on_conflict=", retry, '"\noutput = "/dev/null"\n')
  end
  f:close()
  local p = io.popen("curl -s --no-progress-meter -Z --parallel-max " .. clients .. " -w '%{http_code}\\n' -X POST "
    .. "-H 'Content-Type: application/json' -d " .. q('{"script":"ctx._source.n += 1"}') .. " -K " .. q(cfg))
  local counts = {}
  for line in p:lines() do counts[line] = (counts[line] or 0) + 1 end
  p:close()
  os.remove(cfg)
  return counts
end

describe("espipe serve #server: scripts", function()
  local server, url
  setup(function()
    server = devserver.start()
    url = server.url
  end)
  teardown(function() server.stop() end)

  local function source(index, id)
    local _, body = http.json("GET", url .. "/" .. index .. "/_doc/" .. id)
    return body._source
  end

  it("updates with a script and params, noop and delete through ctx.op", function()
    http.json("PUT", url .. "/s/_doc/1", { n = 1, tags = { "a" } })
    local status, body = http.json("POST", url .. "/s/_update/1", { script = {
      source = "ctx._source.n += params.by; ctx._source.tags.add(params.tag)", params = { by = 4, tag = "b" } } })
    assert.equal(200, status)
    assert.same({ "updated", 2 }, { body.result, body._version })
    assert.same({ n = 5, tags = { "a", "b" } }, source("s", 1))
    status, body = http.json("POST", url .. "/s/_update/1", { script = "if (ctx._source.n == 5) { ctx.op = 'noop' }" })
    assert.same({ 200, "noop", 2 }, { status, body.result, body._version })
    status, body = http.json("POST", url .. "/s/_update/1",
      { _source = true, script = { source = "ctx.op = 'delete'" } })
    assert.same({ 200, "deleted" }, { status, body.result })
    assert.equal(404, (http.json("GET", url .. "/s/_doc/1")))
  end)

  it("inserts the upsert as is, or runs the script on it with scripted_upsert", function()
    local status, body = http.json("POST", url .. "/s/_update/u", { script = "ctx._source.n++", upsert = { n = 10 } })
    assert.same({ 201, "created" }, { status, body.result })
    assert.same({ n = 10 }, source("s", "u"))
    http.json("POST", url .. "/s/_update/u", { script = "ctx._source.n++", upsert = { n = 10 } })
    assert.same({ n = 11 }, source("s", "u"))
    status = http.json("POST", url .. "/s/_update/su", { scripted_upsert = true, upsert = {},
      script = { source = "ctx._source.count = params.c", params = { c = 3 } } })
    assert.equal(201, status)
    assert.same({ count = 3 }, source("s", "su"))
    status, body = http.json("POST", url .. "/s/_update/none", { script = "ctx._source.n++" })
    assert.same({ 404, "document_missing_exception" }, { status, body.error.type })
  end)

  it("answers a script outside the subset or failing at runtime with ES's script_exception", function()
    http.json("PUT", url .. "/s/_doc/e", { n = 1 })
    local status, body = http.json("POST", url .. "/s/_update/e", { script = "ctx._source.l.removeIf(x -> x > 1)" })
    assert.equal(400, status)
    assert.same({ "illegal_argument_exception", "failed to execute script" }, { body.error.type, body.error.reason })
    local se = body.error.caused_by
    assert.same({ "script_exception", "compile error", "painless" }, { se.type, se.reason, se.lang })
    assert.same({ offset = 25, start = 0, ["end"] = 34 }, se.position)
    assert.matches("lambdas", se.caused_by.reason)
    status, body = http.json("POST", url .. "/s/_update/e", { script = "ctx._source.n = 2", doc = { n = 3 } })
    assert.same({ 400, "Validation Failed: 1: can't provide both script and doc;" }, { status, body.error.reason })
    status, body = http.json("POST", url .. "/s/_update/e", { script = "ctx._source.missing.x = 1" })
    assert.equal(400, status)
    assert.same({ "runtime error", "null_pointer_exception" }, { body.error.caused_by.reason,
      body.error.caused_by.caused_by.type })
    status, body = http.json("POST", url .. "/s/_update/e", { script = "ctx._source.self = ctx._source" })
    assert.same({ 400, "failed to execute script" }, { status, body.error.reason })
    assert.matches("cannot be written as JSON", body.error.caused_by.reason)
    assert.same({ n = 1 }, source("s", "e"))
  end)

  it("runs scripts in bulk update items, next to fast-path items", function()
    local status, body = http.bulk(url, {
      { index = { _index = "b", _id = "1" } }, { n = 1 },
      { update = { _index = "b", _id = "1" } }, { script = { source = "ctx._source.n *= 10" } },
      { update = { _index = "b", _id = "1" } }, { script = "ctx._source.n.foo()" },
    }, "?refresh=true")
    assert.equal(200, status)
    assert.is_true(body.errors)
    assert.same({ 200, "updated" }, { body.items[2].update.status, body.items[2].update.result })
    assert.equal(400, body.items[3].update.status)
    assert.equal("script_exception", body.items[3].update.error.caused_by.type)
    assert.same({ n = 10 }, source("b", 1))
  end)

  it("stores, uses, gets and deletes scripts", function()
    local status = http.json("PUT", url .. "/_scripts/bump", { script = { lang = "painless",
      source = "ctx._source.n += params.by" } })
    assert.equal(200, status)
    local _, body = http.json("GET", url .. "/_scripts/bump")
    assert.same({ _id = "bump", found = true, script = { lang = "painless", source = "ctx._source.n += params.by" } },
      body)
    http.json("PUT", url .. "/st/_doc/1", { n = 1 })
    status = http.json("POST", url .. "/st/_update/1", { script = { id = "bump", params = { by = 2 } } })
    assert.equal(200, status)
    assert.same({ n = 3 }, source("st", 1))
    status, body = http.json("PUT", url .. "/_scripts/bad", { script = { lang = "painless", source = "x y" } })
    assert.equal(400, status)
    assert.equal("script_exception", body.error.caused_by.type)
    assert.equal(200, (http.json("DELETE", url .. "/_scripts/bump")))
    assert.equal(404, (http.json("GET", url .. "/_scripts/bump")))
    status, body = http.json("POST", url .. "/st/_update/1", { script = { id = "bump" } })
    assert.same({ 404, "resource_not_found_exception" }, { status, body.error.type })
  end)

  it("concurrent scripted updates conflict, lose nothing, and retry_on_conflict absorbs the conflicts", function()
    http.json("PUT", url .. "/cnt/_doc/1", { n = 0 })
    local counts = concurrent_increments(url, 60, 20, 0)
    local ok, conflicts = counts["200"] or 0, counts["409"] or 0
    assert.equal(60, ok + conflicts)
    assert.equal(ok, source("cnt", 1).n)        -- every acknowledged increment is there, no other
    assert.is_true(conflicts > 0, "no conflict in 60 updates over 20 parallel connections")
    counts = concurrent_increments(url, 60, 20, 1000)
    assert.same({ ["200"] = 60 }, counts)
    assert.equal(ok + 60, source("cnt", 1).n)
  end)
end)
