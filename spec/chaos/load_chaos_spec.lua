-- Issue 12, "nothing lost": espipe.load{} and `espipe load` through the
-- fault proxy (20% of the _bulk items 429, 5% of the requests 503, 2% of
-- the responses reset and 1% truncated after the server applied them), the
-- outcome read from the dev server directly: 0 lost, 0 duplicated,
-- added == ok + failed, the dead letter exactly what is not on the server,
-- and its replay completing the input exactly.
local devserver = require("spec.support.devserver")
local http = require("support.http")
local fault_proxy = require("support.fault_proxy")
local H = require("chaos.chaos_helper")
local espipe = require("espipe")

local N = H.N

describe("load under network faults #server #chaos", function()
  local env = devserver.env {}
  setup(env.start) teardown(env.stop) before_each(env.fresh)
  local proxy, dir, input
  setup(function()
    dir = env.tmpdir()
    input = H.write_input(dir .. "/input.ndjson", N)
  end)
  after_each(function()
    if proxy then proxy:stop() end
    proxy = nil
  end)

  local function through_proxy(rules, seed)
    proxy = fault_proxy.start{ upstream = env.server.url, seed = seed or 12, rules = rules, max_seconds = 600 }
    return espipe.client{ hosts = { proxy.url } }
  end

  -- the faults really happened (a run without them proves nothing)
  local function assert_faults(st, lose_responses)
    assert.is_true(st.items_failed > 0 and st.statuses > 0, H.describe(H.ledger(0, {}, {}), nil, st))
    if lose_responses ~= false then
      assert.is_true(st.reset_responses > 0 and st.truncations > 0, H.describe(H.ledger(0, {}, {}), nil, st))
    end
  end

  local function load(opts)
    local o = { input = input, index = opts.index, dead_letter = dir .. "/" .. opts.index .. ".dead",
                backoff = H.BACKOFF, retry_for = H.RETRY_FOR }
    for k, v in pairs(opts) do o[k] = v end
    local summary, err, partial = espipe.load(o)
    assert.is_nil(err)
    return summary or partial
  end

  local function exactly_once(index, summary, st, n)
    return (H.assert_exactly_once(env.server.url, index, n or N, dir .. "/" .. index .. ".dead", summary, st))
  end

  it("client-side ids (the default): every document exactly once", function()
    local summary = load{ client = through_proxy(H.bulk_faults()), index = "auto" }
    local st = proxy:stats()
    assert_faults(st)
    local by_id = exactly_once("auto", summary, st)
    -- ids made by the client before the first send: 20 URL-safe characters
    local id = next(by_id)
    assert.equal(20, #id)
    assert.matches("^[%w_%-]+$", id)
  end)

  it("explicit ids from id_field: every document exactly once, under its own id", function()
    local summary = load{ client = through_proxy(H.bulk_faults(), 13), index = "explicit", id_field = "id" }
    local st = proxy:stats()
    assert_faults(st)
    local by_id = exactly_once("explicit", summary, st)
    local wrong = 0
    for id, n in pairs(by_id) do if id ~= "d" .. n then wrong = wrong + 1 end end
    assert.equal(0, wrong)
  end)

  it("server_ids = true: exactly once while no response is lost", function()
    local n = math.floor(N / 4)
    local summary = load{ client = through_proxy(H.bulk_faults{ lose_responses = false }, 14),
                          input = H.write_input(dir .. "/quarter.ndjson", n), index = "server_ids",
                          server_ids = true }
    local st = proxy:stats()
    assert_faults(st, false)
    exactly_once("server_ids", summary, st, n)
  end)

  it("server_ids = true: nothing lost when responses are; duplicates only from lost responses", function()
    local batch_docs = 1000
    local summary = load{ client = through_proxy(H.bulk_faults(), 15), index = "server_ids_lossy",
                          server_ids = true, batch_docs = batch_docs }
    local st = proxy:stats()
    assert_faults(st)
    local on_server, _, total = H.server_docs(env.server.url, "server_ids_lossy")
    local dead, dead_n = H.dead_letter(dir .. "/server_ids_lossy.dead")
    local r = H.ledger(N, on_server, dead)
    local why = H.describe(r, summary, st)
    assert.same({ 0, 0, 0 }, { r.lost, r.both, dead_n }, why)
    assert.is_true(r.duplicated <= (st.reset_responses + st.truncations) * batch_docs, why)
    assert.is_true(total - N >= r.duplicated, why)
    assert.same({ N, N, 0 }, { summary.added, summary.ok, summary.failed }, why)
  end)

  it("the dead letter holds exactly what the server refused for good; its replay completes the input", function()
    -- every 100th document has a field the strict mapping refuses: a
    -- permanent error, dead-lettered once retries of everything else succeed
    local n = math.floor(N / 10)
    local mixed = dir .. "/mixed.ndjson"
    local f = assert(io.open(mixed, "wb"))
    for i = 1, n do
      f:write('{"id":"d', i, '","n":', i, i % 100 == 0 and ',"extra":1' or "", "}\n")
    end
    f:close()
    local status = http.json("PUT", env.server.url .. "/strict", { mappings = { dynamic = "strict",
      properties = { id = { type = "keyword" }, n = { type = "long" } } } })
    assert.equal(200, status)
    local dead_path = dir .. "/strict.dead"
    local summary = load{ client = through_proxy(H.bulk_faults(), 16), input = mixed, index = "strict",
                          id_field = "id", batch_docs = 100 }
    local st = proxy:stats()
    assert_faults(st)
    local on_server = H.server_docs(env.server.url, "strict")
    local dead, dead_n = H.dead_letter(dead_path)
    local r = H.ledger(n, on_server, dead)
    local why = H.describe(r, summary, st)
    assert.same({ 0, 0, 0, 0 }, { r.lost, r.duplicated, r.both, r.dead_twice }, why)
    local expected_dead = math.floor(n / 100)
    assert.equal(expected_dead, dead_n, why)
    for i = 100, n, 100 do assert.equal(1, dead[i], "n=" .. i .. " not dead-lettered") end
    assert.same({ n, n - expected_dead, expected_dead }, { summary.added, summary.ok, summary.failed }, why)

    -- the mapping learns the field; `espipe load --format deadletter`, through
    -- the same faults, completes the input exactly
    local learn = { properties = { extra = { type = "long" } } }
    assert.equal(200, (http.json("PUT", env.server.url .. "/strict/_mapping", learn)))
    local replay_dead = dir .. "/replay.dead"
    local rc, _, err = H.espipe{ "load", dead_path, "--format", "deadletter", "--url", proxy.url,
                                 "--dead-letter", replay_dead, "--retry-for", "60", "--quiet" }
    assert.equal(0, rc, err)
    on_server = H.server_docs(env.server.url, "strict")
    r = H.ledger(n, on_server, {})
    assert.same({ 0, 0 }, { r.lost, r.duplicated }, H.describe(r, nil, proxy:stats()))
    assert.equal(n, H.count(env.server.url, "strict"))
    assert.is_nil(io.open(replay_dead))
  end)

  it("`espipe load` (the command): every document exactly once, exit status 0", function()
    through_proxy(H.bulk_faults(), 17)
    local dead_path = dir .. "/cli.dead"
    local rc, out, err = H.espipe{ "load", input, "--index", "cli", "--url", proxy.url,
                                   "--dead-letter", dead_path, "--retry-for", "60", "--json" }
    local st = proxy:stats()
    assert.equal(0, rc, err)
    assert_faults(st)
    local summary = assert(require("espipe.json").decode(out), out)
    exactly_once("cli", summary, st)
  end)
end)
