-- espipe load --transform against the dev server: per-document results
-- (keep, drop, fan-out, dead-lettered errors, a forgotten return), and a
-- batch transform whose HTTP lookups go to nginx through the fault proxy: a
-- lookup that fails or times out dead-letters its document, never loses or
-- changes it.
local devserver = require "support.devserver"
local echo_server = require "support.echo_server"
local fault_proxy = require "support.fault_proxy"
local json = require "espipe.json"
local S = require "pipeline.support"
local J = require "pipeline.jobs"

local function records(path)
  local out = {}
  for line in (S.read_if(path) or ""):gmatch("[^\n]+") do out[#out + 1] = json.decode(line) end
  return out
end

describe("espipe load --transform #server", function()
  local env = devserver.env { nodes = 1 }
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  local function load(index, n, transform_text, extra, env_vars)
    local input, t = env.dir .. "/in.ndjson", env.dir .. "/t.lua"
    J.write_docs(input, n)
    S.write(t, transform_text)
    return J.espipe("load " .. S.q(input) .. " --index " .. index .. " --id-field id --transform " .. S.q(t)
      .. " --dead-letter " .. S.q(env.dir .. "/dl.ndjson") .. " --json --quiet --url " .. env.server.url
      .. " " .. (extra or ""), env_vars)
  end

  it("keeps, drops, fans out and dead-letters per document", function()
    local code, out, err = load("per-doc", 30, [[
      local espipe = require "espipe"
      return function(doc, from, ctx)
        assert(ctx, "a per-document transform gets ctx too")
        doc.line = from.line
        if doc.n % 10 == 0 then return nil end
        if doc.n % 10 == 5 then error("five", 0) end
        if doc.n == 3 then return espipe.many { doc, { _id = "copy-3", copy_of = doc.id } } end
        return doc
      end]])
    assert.equal(1, code, err) -- dead-lettered documents
    local s = json.decode(out)
    assert.equal(3, s.dropped)
    assert.equal(3, s.transform_errors)
    assert.equal(1, s.fanned_out - 1)
    local docs, n = J.dump(env.client, "per-doc")
    assert.equal(25, n)
    for i = 1, 30 do
      local d = docs["doc-" .. i]
      if i % 10 == 0 or i % 10 == 5 then assert.is_nil(d) else assert.equal(i, d.line) end
    end
    assert.same({ copy_of = "doc-3" }, docs["copy-3"])
    local dl = records(env.dir .. "/dl.ndjson.transform")
    assert.equal(3, #dl)
    for k, r in ipairs(dl) do
      assert.equal(k * 10 - 5, r.line)
      assert.equal("five", r.error)
      assert.equal("doc-" .. r.line, r.source.id)
    end
  end)

  it("transforms CSV rows; the id field may be one the transform adds", function()
    local input, t = env.dir .. "/in.csv", env.dir .. "/t.lua"
    S.write(input, "name,n\na,1\nb,2\n")
    S.write(t, "return function(row) return { key = 'k-' .. row.name, n = tonumber(row.n) * 10 } end")
    local code, _, err = J.espipe("load " .. S.q(input) .. " --format csv --index rows --id-field key --transform "
      .. S.q(t) .. " --quiet --url " .. env.server.url)
    assert.equal(0, code, err)
    local docs, n = J.dump(env.client, "rows")
    assert.equal(2, n)
    assert.same({ key = "k-a", n = 10 }, docs["k-a"])
    assert.same({ key = "k-b", n = 20 }, docs["k-b"])
  end)

  it("names the transform dead letter in the summary, without offering to replay it", function()
    local input, t = env.dir .. "/in.ndjson", env.dir .. "/t.lua"
    J.write_docs(input, 3)
    S.write(t, "return function(doc) if doc.n == 2 then error('two', 0) end return doc end")
    local code, _, err = J.espipe("load " .. S.q(input) .. " --index summary --id-field id --transform " .. S.q(t)
      .. " --dead-letter " .. S.q(env.dir .. "/dl.ndjson") .. " --url " .. env.server.url)
    assert.equal(1, code, err)
    assert.matches("dead letter%s+" .. env.dir:gsub("%p", "%%%0") .. "/dl%.ndjson%.transform", err)
    assert.is_nil(err:find("--format deadletter", 1, true))
  end)

  it("stops when the transform returns no value, naming the line", function()
    local code, _, err = load("no-value", 5, "return function(doc) end")
    assert.equal(1, code)
    assert.matches("returned no value for line 1", err, 1, true)
  end)

  it("reports a transform that does not compile with its file and line, and runs nothing", function()
    local code, _, err = load("bad-syntax", 5, "return function(doc)\n  return doc +\nend\n")
    assert.equal(2, code)
    assert.matches("t.lua:3:", err, 1, true)
  end)

  describe("a batch transform with HTTP lookups", function()
    local echo, proxy
    setup(function()
      echo = echo_server.start()
      proxy = fault_proxy.start { upstream = echo.url, rules = {
        { match = "doc-7/", action = "status", status = 503 },
        { match = "doc-13/", action = "stall" },
      } }
    end)
    teardown(function()
      proxy:stop()
      echo:stop()
    end)

    it("enriches every document whose lookup answered; the others are dead-lettered unchanged", function()
      local code, out, err = load("batch", 40, [[
        local json = require "espipe.json"
        local base = os.getenv("LOOKUP_URL")
        return { size = 7, concurrency = 4, timeout = 0.5, retries = 1, batch = function(docs, ctx, from)
          local reqs = {}
          for i, d in ipairs(docs) do reqs[i] = { url = base .. "/lookup/" .. d.id .. "/" } end
          local results, errs = ctx:all(reqs)
          local out = {}
          for i, d in ipairs(docs) do
            if results[i] then
              d.looked_up, d.line = json.decode(results[i].body).uri, from[i].line
              out[i] = d
            end
          end
          return out, errs
        end }]], nil, "LOOKUP_URL=" .. proxy.url)
      assert.equal(1, code, err)
      local s = json.decode(out)
      assert.equal(38, s.ok)
      assert.equal(2, s.transform_errors)
      local docs, n = J.dump(env.client, "batch")
      assert.equal(38, n)
      for i = 1, 40 do
        local d = docs["doc-" .. i]
        if i == 7 or i == 13 then assert.is_nil(d)
        else
          assert.equal("/lookup/doc-" .. i .. "/", d.looked_up)
          assert.equal(i, d.line)
        end
      end
      local dl = records(env.dir .. "/dl.ndjson.transform")
      table.sort(dl, function(a, b) return a.line < b.line end)
      assert.equal(2, #dl)
      assert.equal(7, dl[1].line)
      assert.matches("503", dl[1].error, 1, true)
      assert.equal(13, dl[2].line)
      assert.matches("timed out", dl[2].error, 1, true)
      assert.is_nil(dl[2].source.looked_up) -- as read, not half-enriched
      assert.equal(9007199254740993, dl[2].source.big)
    end)
  end)
end)
