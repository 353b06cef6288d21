-- README's tour shell snippets run as written against the dev server: the
-- ```sh blocks of "## A five-minute tour", with the URL rewritten to the
-- spec's server and its `espipe serve` line left out (the spec started one),
-- in a scratch directory that sees the checkout's bin/ and examples/.
local devserver = require "support.devserver"
local pkg = require "packaging.support"
local q = pkg.q

local function tour_script()
  local readme = pkg.read("README.md")
  local tour = assert(readme:match("\n## A five%-minute tour\n(.-)\n## "), "README has no '## A five-minute tour'")
  local lines = {}
  for block in tour:gmatch("```sh\n(.-)```") do
    for line in block:gmatch("[^\n]*\n") do
      if not line:find("espipe serve", 1, true) then lines[#lines + 1] = line end
    end
  end
  return table.concat(lines)
end

describe("README's tour from a shell #server", function()
  local es = devserver.env {}
  setup(es.start) teardown(es.stop) before_each(es.fresh)

  it("runs verbatim, and its export holds every document the reindex wrote", function()
    local script = tour_script()
    assert.matches("espipe export", script, 1, true)
    local tmp = es.dir
    local checkout = pkg.run("pwd"):match("[^\n]+")
    pkg.run("mkdir " .. q(tmp .. "/work") .. " && ln -s " .. q(checkout .. "/bin") .. " " .. q(checkout .. "/examples")
      .. " " .. q(tmp .. "/work/"))
    pkg.write(tmp .. "/tour.sh", (script:gsub("http://127%.0%.0%.1:9200", es.server.url)))
    local ok, out = pkg.sh("cd " .. q(tmp .. "/work") .. " && ES_URL=" .. q(es.server.url) .. " sh -e ../tour.sh")
    assert(ok, out)
    assert.matches("\nuser%-1\t%d+\nuser%-2\t%d+\n", "\n" .. out)
    local count = tonumber(pkg.run("curl -s " .. q(es.server.url .. "/logs-enriched/_count")):match('"count":(%d+)'))
    assert.is_true(count > 0)
    local manifest = require("espipe.json").decode(pkg.read(tmp .. "/work/out/manifest.json"))
    assert.equal(count, manifest.rows)
  end)
end)
