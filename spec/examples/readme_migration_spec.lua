-- README's migration example ("## Elasticsearch and OpenSearch versions")
-- runs as written, old and new being an es-6.8 and an es-8.15 dev server:
-- every logs-* index arrives under its own name, with its mapping, and its
-- documents.
local devserver = require "support.devserver"
local http = require "support.http"
local pkg = require "packaging.support"
local q = pkg.q

local function migration_line()
  local readme = pkg.read("README.md")
  local section = assert(readme:match("\n## Elasticsearch and OpenSearch versions\n(.-)\n## "),
    "README has no '## Elasticsearch and OpenSearch versions'")
  for block in section:gmatch("```sh\n(.-)```") do
    if block:find("--create-index-from-source", 1, true) then return block end
  end
  error("README's versions section has no --create-index-from-source example")
end

describe("README's migration example #server", function()
  local old, new
  setup(function()
    old = devserver.start { args = { "--flavor", "es-6.8" } }
    new = devserver.start { args = { "--flavor", "es-8.15" } }
    for m = 1, 2 do
      local name = "logs-2026." .. m
      assert.equal(200, (http.json("PUT", old.url .. "/" .. name,
        { mappings = { _doc = { properties = { n = { type = "long" } } } } })))
      local lines = {}
      for i = 1, 20 do
        lines[#lines + 1] = { index = { _index = name, _type = "_doc", _id = tostring(i) } }
        lines[#lines + 1] = { n = i }
      end
      assert.equal(200, (http.bulk(old.url, lines, "?refresh=true")))
    end
  end)
  teardown(function()
    old.stop()
    new.stop()
  end)

  it("copies every logs-* index under its name, with its mapping and documents", function()
    local script = migration_line():gsub("http://old:9200", old.url):gsub("http://new:9200", new.url)
    local checkout = pkg.run("pwd"):match("[^\n]+")
    local ok, out = pkg.sh("PATH=" .. q(checkout .. "/bin") .. ":\"$PATH\" sh -e -c " .. q(script))
    assert(ok, out)
    for m = 1, 2 do
      local name = "logs-2026." .. m
      local _, mapping = http.json("GET", new.url .. "/" .. name .. "/_mapping")
      assert.same({ n = { type = "long" } }, mapping[name].mappings.properties)
      local _, count = http.json("GET", new.url .. "/" .. name .. "/_count")
      assert.equal(20, count.count)
    end
  end)
end)
