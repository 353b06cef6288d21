-- espipe.server.lucene_query: the Lucene query syntax of ?q=, query_string
-- and simple_query_string, evaluated through espipe.server.query.
local json = require("espipe.server.json")
local query = require("espipe.server.query")
local lucene = require("espipe.server.lucene_query")

local mappings = { properties = {
  title = { type = "text" }, tag = { type = "keyword" }, n = { type = "long" },
  at = { type = "date" }, user = { properties = { name = { type = "keyword" } } },
} }

local sources = {
  ["1"] = { title = "Quick brown fox", tag = "Animal", n = 5, at = "2024-01-01", user = { name = "ann" } },
  ["2"] = { title = "Lazy brown dog", tag = "animal", n = 10, at = "2024-02-01" },
  ["3"] = { title = "The quick answer", tag = "x-y", n = 20, user = { name = "bob" } },
  ["4"] = { title = "nothing", n = 30 },
}
local decoded = {}
for id, s in pairs(sources) do decoded[id] = json.decode(json.encode(s)) end

-- compile { <name> = { query = q, <extra> } } -> matcher, err
local function compile(q, extra, name)
  local body = { query = q }
  for k, v in pairs(extra or {}) do body[k] = v end
  return query.compile({ [name or "query_string"] = body }, mappings)
end

-- the ids (sorted, joined) of the documents a query string matches
local function ids(q, extra, name)
  local m, err = compile(q, extra, name)
  assert(m, err and tostring(err))
  local hit = {}
  for id in pairs(decoded) do hit[#hit + 1] = id end
  table.sort(hit)
  local kept = {}
  for _, id in ipairs(hit) do
    if m(decoded[id], { _id = id, _index = "i" }) then kept[#kept + 1] = id end
  end
  return table.concat(kept, ",")
end

local function parse_error(q, extra)
  local m, err = compile(q, extra)
  assert.is_nil(m)
  return err
end

describe("server Lucene query syntax", function()
  it("field:value, default field over every field, df", function()
    assert.equal("1,3", ids("title:quick"))
    assert.equal("1,2", ids("brown"))
    assert.equal("1,2", ids("brown", { default_field = "title" }))
    assert.equal("", ids("brown", { default_field = "tag" }))
    assert.equal("2", ids("n:10"))
    assert.equal("1", ids("user.name:ann"))
    assert.equal("1", ids("tag:Animal"))
  end)

  it("combines clauses as Lucene does: OR by default, AND, NOT, + and -, groups", function()
    assert.equal("1,2,3", ids("title:fox title:dog title:answer"))
    assert.equal("1", ids("title:quick AND title:brown"))
    assert.equal("1", ids("title:quick && title:brown"))
    assert.equal("3", ids("title:quick AND NOT title:brown"))
    assert.equal("3", ids("+title:quick -title:fox"))
    assert.equal("2,3,4", ids("-title:fox"))
    assert.equal("1,2", ids("title:brown AND (title:fox OR title:dog)"))
    assert.equal("1,2", ids("title:(fox dog)"))
    assert.equal("", ids("title:quick title:dog", { default_operator = "AND" }))
    assert.equal("1,2,3", ids("title:quick OR title:dog", { default_operator = "AND" }))
    assert.equal("3", ids("title:quick !title:fox", { default_operator = "AND" }))
  end)

  it("phrases, wildcards, ranges, comparisons and _exists_", function()
    assert.equal("1,2", ids('title:"brown"'))
    assert.equal("1", ids('title:"quick fox"'))
    assert.equal("1,3", ids("title:QUI*"))       -- normalised for a text field, as ES does
    assert.equal("", ids("tag:ANI*"))            -- keyword: as written
    assert.equal("2", ids("tag:a?imal"))
    assert.equal("1,2", ids("n:[5 TO 10]"))
    assert.equal("", ids("n:{5 TO 10}"))
    assert.equal("2,3", ids("n:{5 TO 20]"))
    assert.equal("3,4", ids("n:[20 TO *]"))
    assert.equal("3,4", ids("n:>=20"))
    assert.equal("1", ids("n:<10"))
    assert.equal("2", ids("at:[2024-01-15 TO 2024-03-01]"))
    assert.equal("1,3", ids("_exists_:user"))
    assert.equal("3", ids("tag:x\\-y"))
    assert.equal("1,2,3,4", ids("*"))
  end)

  it("a number field given a word fails unless lenient", function()
    local err = parse_error("n:foo")
    assert.same({ 400, "query_shard_exception" }, { err.status, err.type })
    assert.equal("", ids("n:foo", { lenient = true }))
  end)

  it("refuses what it cannot parse, naming the query", function()
    local err = parse_error("title:(quick")
    assert.matches("^Failed to parse query %[title:%(quick%]", err.reason)
    assert.matches("Failed to parse query", parse_error('"open').reason)
    assert.matches("fuzzy terms", parse_error("quikc~2").reason)
    assert.matches("nest deeper than 256", parse_error(string.rep("(", 5000) .. "a" .. string.rep(")", 5000)).reason)
    assert.equal("1,3", ids(string.rep("(", 50) .. "title:quick" .. string.rep(")", 50)))
    assert.matches("does not support %[qurey%]", select(2, query.compile({ query_string = { qurey = "x" } })).reason)
  end)

  it("/regex/ terms: regexp queries, lowercased for text fields, \\/ inside, refused on numbers", function()
    assert.equal("1,3", ids("title:/qu.ck/"))
    assert.equal("1,3", ids("title:/QU.CK/"))          -- text: matched as its lowercased tokens
    assert.equal("2", ids("tag:/an.*/"))              -- keyword: case kept
    assert.equal("3", ids("tag:/x-y/ OR tag:/a\\/b/"))
    assert.equal("1,2", ids("/br.wn/"))               -- every field; the long field is skipped
    assert.same({ "qu.ck", "a\\/b" }, lucene.regexps({ query = "title:/qu.ck/ AND /a\\/b/" }))
    assert.matches("Can only use regexp queries on keyword and text fields %- not on %[n%] which is of type %[long%]",
      parse_error("n:/1.*/").reason)
    assert.matches("no closing /", parse_error("title:/open").reason)
    assert.is_nil(lucene.regexps({ query = "title:(open" }))
  end)

  it("simple_query_string: + | - phrases prefixes, never a syntax error", function()
    assert.equal("1", ids("quick + brown", { fields = { "title" } }, "simple_query_string"))
    assert.equal("1,2", ids("fox | dog", { fields = { "title" } }, "simple_query_string"))
    assert.equal("3", ids("quick -fox", { fields = { "title" }, default_operator = "and" }, "simple_query_string"))
    assert.equal("1,3", ids("qui*", { fields = { "title" } }, "simple_query_string"))
    assert.equal("1", ids('"quick fox" (', { fields = { "title" } }, "simple_query_string"))
  end)

  it("from_args turns ?q= and its companions into a query_string query", function()
    assert.same({ query_string = { query = "a:b", default_field = "f", default_operator = "AND", lenient = true } },
      lucene.from_args({ q = "a:b", df = "f", default_operator = "AND", lenient = "true" }))
    assert.is_nil(lucene.from_args({}))
  end)
end)
