-- espipe load --routing-field and --rate against the dev server.
local S = require "pipeline.support"
local J = require "pipeline.jobs"
local json = require "espipe.json"

describe("espipe load, routing and rate #server", function()
  local env = require("pipeline.load_env").new()
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  local function routings(index)
    env.client:refresh { index = index }
    local out = {}
    for hit in env.client:scan(index, nil, { size = 100 }) do out[hit._id] = hit._routing or false end
    return out
  end

  it("routes each document by its field, a bad line when it has none", function()
    local input = env.dir .. "/in.ndjson"
    S.write(input, '{"id":"a","u":"r1"}\n{"id":"b","u":7}\n{"id":"c"}\n{"id":"d","u":""}\n{"id":"e","u":"x\\"y"}\n')
    for _, extra in ipairs { "--id-field id", "--id-field id --strict", "--format csv" } do
      local index = "rt" .. #extra
      local file = input
      if extra == "--format csv" then
        file = env.dir .. "/in.csv"
        S.write(file, 'id,u\na,r1\nb,7\n')
        extra = extra .. " --id-field id"
      end
      local code, _, err = J.espipe("load " .. S.q(file) .. " --index " .. index .. " " .. extra .. " --routing-field u"
        .. " --on-bad-line skip --quiet --url " .. env.server.url .. " --dead-letter " .. S.q(env.dir .. "/dl" .. index))
      local got = routings(index)
      if file == input then
        assert.equal(1, code, err) -- the bad lines make it exit 1
        assert.same({ a = "r1", b = "7", e = 'x"y' }, got)
        local dl = S.read(env.dir .. "/dl" .. index .. ".input")
        assert.matches("missing routing field u", dl, 1, true)
        assert.matches("empty routing field u", dl, 1, true)
      else
        assert.equal(0, code, err)
        assert.same({ a = "r1", b = "7" }, got)
      end
    end
    local doc = assert(env.client:json_request { method = "GET", path = "/rt13/_doc/b", query = { routing = "7" } })
    assert.is_true(doc.found)
    assert.equal("7", doc._routing)
  end)

  it("loads no faster than --rate", function()
    local input = env.dir .. "/in.ndjson"
    local lines = {}
    for i = 1, 300 do lines[i] = '{"n":' .. i .. "}" end
    S.write(input, table.concat(lines, "\n") .. "\n")
    local code, out, err = J.espipe("load " .. S.q(input) .. " --index rated --rate 500 --json --url " .. env.server.url
      .. " --dead-letter " .. S.q(env.dir .. "/dl"))
    assert.equal(0, code, err)
    local s = json.decode(out:match("{.*}"))
    assert.equal(300, s.ok)
    -- the limiter holds the 300th document until 0.6 s have passed (a lower bound, never a race)
    assert.is_true(s.elapsed >= 0.59, "elapsed " .. tostring(s.elapsed))
    assert.equal(300, env.count("rated"))
  end)

  it("refuses a rate that is not a positive number", function()
    local code, _, err = J.espipe("load - --index x --rate 0 --url " .. env.server.url)
    assert.equal(2, code)
    assert.matches("rate must be a positive number", err, 1, true)
  end)
end)

describe("espipe load --pipeline #server", function()
  local env = require("pipeline.load_env").new()
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  it("names the ingest pipeline on every bulk request", function()
    -- nginx in front of the dev server, logging each request's URI
    local nginx = require "support.nginx"
    local app = nginx.start { conf = function(port)
      return table.concat({
        "pid logs/nginx.pid; error_log logs/error.log; events {}",
        "http { log_format uri '$request_method $request_uri'; access_log logs/uri.log uri;",
        "  server { listen 127.0.0.1:" .. port .. "; location / { proxy_pass " .. env.server.url .. "; } } }",
      }, "\n")
    end }
    local input = env.dir .. "/in.ndjson"
    local lines = {}
    for i = 1, 250 do lines[i] = '{"n":' .. i .. "}" end
    S.write(input, table.concat(lines, "\n") .. "\n")
    local code, _, err = J.espipe("load " .. S.q(input) .. " --index piped --pipeline enrich-1 --batch-docs 100"
      .. " --quiet --url " .. app.url .. " --dead-letter " .. S.q(env.dir .. "/dl"))
    local log = S.read(app.prefix .. "/logs/uri.log")
    app.stop()
    assert.equal(0, code, err)
    local bulks = 0
    for line in log:gmatch("[^\n]+") do
      if line:find("_bulk", 1, true) then
        bulks = bulks + 1
        assert.matches("[?&]pipeline=enrich%-1", line)
      end
    end
    assert.equal(3, bulks)
    assert.equal(250, env.count("piped"))
  end)
end)
