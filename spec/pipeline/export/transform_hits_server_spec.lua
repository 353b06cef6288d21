-- espipe export --transform against the dev server: per-document results
-- (keep, drop, fan-out, dead-lettered errors) in the files written, and a
-- batch transform whose HTTP lookups go to nginx, through the Lua API too.
local devserver = require "support.devserver"
local echo_server = require "support.echo_server"
local espipe = require "espipe"
local json = require "espipe.json"
local S = require "pipeline.support"
local J = require "pipeline.jobs"

local function lines_of(path)
  local out = {}
  for line in S.read(path):gmatch("[^\n]+") do out[#out + 1] = json.decode(line) end
  return out
end

describe("espipe export --transform #server", function()
  local env = devserver.env { nodes = 1 }
  setup(function()
    env.start()
    local d = env.tmpdir()
    J.write_docs(d .. "/docs.ndjson", 30)
    local code, _, err = J.espipe("load " .. S.q(d .. "/docs.ndjson") .. " --index ex --id-field id --quiet --url "
      .. env.server.url)
    assert(code == 0, err)
  end)
  teardown(env.stop) before_each(env.fresh)

  it("writes what the per-document transform keeps, fans out; dead-letters what it raised on", function()
    S.write(env.dir .. "/t.lua", [[
      local espipe = require "espipe"
      return function(doc, hit)
        if doc.n % 10 == 0 then return nil end
        if doc.n == 7 then error("seven", 0) end
        if doc.n == 3 then return espipe.many { doc, { extra = hit._id } } end
        return { id = doc.id, twice = doc.n * 2 }
      end]])
    local code, out, err = J.espipe("export " .. env.server.url .. "/ex --to " .. S.q(env.dir .. "/out.ndjson")
      .. " --transform " .. S.q(env.dir .. "/t.lua") .. " --dead-letter " .. S.q(env.dir .. "/dl.ndjson")
      .. " --json --quiet")
    assert.equal(1, code, err) -- one dead-lettered document
    local s = json.decode(out)
    assert.equal(3, s.dropped)
    assert.equal(1, s.transform_errors)
    local rows = lines_of(env.dir .. "/out.ndjson")
    assert.equal(27, #rows)
    local by_id, extra = {}, 0
    for _, r in ipairs(rows) do
      if r.extra then extra = extra + 1 assert.equal("doc-3", r.extra) else by_id[r.id] = r end
    end
    assert.equal(1, extra)
    for i = 1, 30 do
      local r = by_id["doc-" .. i]
      if i % 10 == 0 or i == 7 then assert.is_nil(r)
      elseif i == 3 then assert.equal(3, r.n) -- fanned out as it was
      else assert.same({ id = "doc-" .. i, twice = 2 * i }, r) end
    end
    local dl = lines_of(env.dir .. "/dl.ndjson.transform")
    assert.equal(1, #dl)
    assert.equal("doc-7", dl[1]._id)
    assert.equal("seven", dl[1].error)
  end)

  it("exports into a directory with a transform in one process: one dead letter, every error in it", function()
    S.write(env.dir .. "/t.lua", [[return function(doc) if doc.n % 5 == 0 then error("five", 0) end return doc end]])
    local base = "export " .. env.server.url .. "/ex --to " .. S.q(env.dir .. "/out") .. " --slices 4 --transform "
      .. S.q(env.dir .. "/t.lua") .. " --dead-letter " .. S.q(env.dir .. "/dl.ndjson") .. " --quiet"
    local code, _, err = J.espipe(base .. " --workers 2")
    assert.equal(2, code)
    assert.matches("--transform exports in one process", err, 1, true)
    code, _, err = J.espipe(base)
    assert.equal(1, code, err)
    local ids = {}
    for _, r in ipairs(lines_of(env.dir .. "/dl.ndjson.transform")) do ids[#ids + 1] = r._id end
    table.sort(ids)
    assert.same({ "doc-10", "doc-15", "doc-20", "doc-25", "doc-30", "doc-5" }, ids)
  end)

  it("runs a batch transform with concurrent HTTP lookups (Lua API), progress with MB/s", function()
    local echo = echo_server.start()
    local text = {}
    local p = require("espipe.pipeline.progress").new { label = "export", interval = 0, tty = false,
      out = { write = function(_, ...) for _, s in ipairs { ... } do text[#text + 1] = s end end, flush = function() end } }
    local manifest, err = espipe.export { client = env.client, index = "ex", to = env.dir .. "/out", size = 10,
      progress = p, transform = { size = 4, concurrency = 4, batch = function(docs, ctx)
        local reqs = {}
        for i, d in ipairs(docs) do reqs[i] = { url = echo.url .. "/user/" .. d.n } end
        local results, errs = ctx:all(reqs)
        local out = {}
        for i, d in ipairs(docs) do
          out[i] = results[i] and { id = d.id, user = json.decode(results[i].body).uri }
        end
        return out, errs
      end } }
    echo:stop()
    assert.is_table(manifest, tostring(err))
    assert.equal(30, manifest.rows)
    assert.same({ dropped = 0, fanned_out = 0, failed = 0 }, manifest.transform)
    local seen = 0
    for _, f in ipairs(manifest.files) do
      for _, r in ipairs(lines_of(env.dir .. "/out/" .. f.name)) do
        assert.equal("/user/" .. r.id:match("%d+"), r.user)
        seen = seen + 1
      end
    end
    assert.equal(30, seen)
    assert.matches("MB/s", table.concat(text), 1, true)
  end)
end)
