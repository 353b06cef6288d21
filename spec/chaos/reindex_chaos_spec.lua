-- Issue 12, "nothing lost": espipe.reindex{} between two indices with the
-- destination, the source, or both behind the fault proxy; the destination
-- read from the dev server directly must hold exactly the source.
local devserver = require("spec.support.devserver")
local fault_proxy = require("support.fault_proxy")
local H = require("chaos.chaos_helper")
local espipe = require("espipe")

local N = H.N

-- Search pages (PIT + search_after) lost after the server answered them,
-- cut short, or refused (each at least once).
local SEARCH_FAULTS = {
  { match = "POST /_search", action = "reset_response", nth = 2 },
  { match = "POST /_search", action = "truncate", nth = 3 },
  { match = "POST /_search", action = "status", status = 503, nth = 4 },
  { match = "POST /_search", action = "reset_response", p = 0.05 },
  { match = "POST /_search", action = "truncate", p = 0.02 },
  { match = "POST /_search", action = "status", status = 503, p = 0.05 },
}

describe("reindex under network faults #server #chaos", function()
  local env = devserver.env {}
  setup(env.start) teardown(env.stop) before_each(env.fresh)
  local dir, source_by_id
  local proxies = {}
  setup(function()
    dir = env.tmpdir()
    local summary, err = espipe.load{ client = env.client, input = H.write_input(dir .. "/input.ndjson", N),
                                      index = "src", id_field = "id" }
    assert(summary and summary.ok == N, tostring(err))
    local _, by_id, total = H.server_docs(env.server.url, "src")
    assert(total == N, "the source holds " .. total)
    source_by_id = by_id
  end)
  after_each(function()
    for _, p in ipairs(proxies) do
      p.client:close()
      p:stop()
    end
    proxies = {}
  end)

  local function proxied(rules, seed)
    local p = fault_proxy.start{ upstream = env.server.url, seed = seed, rules = rules, max_seconds = 600 }
    proxies[#proxies + 1] = p
    p.client = espipe.client{ hosts = { p.url } }
    return p.client, p
  end

  local function reindex(src_client, dest_client, dest, slices)
    local summary, err, partial = espipe.reindex{
      source = { client = src_client, index = "src", slices = slices },
      dest = { client = dest_client, index = dest },
      dead_letter = dir .. "/" .. dest .. ".dead", backoff = H.BACKOFF, retry_for = H.RETRY_FOR,
    }
    assert.is_nil(err)
    return summary or partial
  end

  -- the destination holds exactly the source: same ids, each with its own
  -- document, nothing dead-lettered, every document accounted
  local function exact_copy(dest, summary, stats)
    local by_id, why = H.assert_exactly_once(env.server.url, dest, N, dir .. "/" .. dest .. ".dead", summary, stats)
    local wrong = 0
    for id, n in pairs(by_id) do if source_by_id[id] ~= n then wrong = wrong + 1 end end
    assert.equal(0, wrong, why)
    assert.equal(N, summary.scanned, why)
  end

  it("destination behind 429 items, 503s, resets and truncations: an exact copy", function()
    local dest_client, p = proxied(H.bulk_faults(), 21)
    local summary = reindex(env.client, dest_client, "dst_faults")
    local st = p:stats()
    assert.is_true(st.items_failed > 0 and st.statuses > 0 and st.reset_responses > 0 and st.truncations > 0,
      H.describe(H.ledger(0, {}, {}), nil, st))
    exact_copy("dst_faults", summary, st)
  end)

  it("source behind lost, cut and refused search pages (2 slices): an exact copy", function()
    local src_client, p = proxied(SEARCH_FAULTS, 22)
    local summary = reindex(src_client, env.client, "dst_src_faults", 2)
    local st = p:stats()
    assert.is_true(st.reset_responses > 0 and st.truncations > 0 and st.statuses > 0,
      H.describe(H.ledger(0, {}, {}), nil, st))
    exact_copy("dst_src_faults", summary, st)
  end)

  it("both sides behind faults (4 slices): an exact copy", function()
    local src_client, sp = proxied(SEARCH_FAULTS, 23)
    local dest_client, dp = proxied(H.bulk_faults(), 24)
    local summary = reindex(src_client, dest_client, "dst_both", 4)
    local st = dp:stats()
    assert.is_true(sp:stats().reset_responses > 0 and st.reset_responses > 0, H.describe(H.ledger(0, {}, {}), nil, st))
    exact_copy("dst_both", summary, st)
  end)
end)
