-- espipe.server.aggs: aggregations over decoded documents, in ES's shapes
-- and key order.
local json = require("espipe.server.json")
local query = require("espipe.server.query")
local doc_fields = require("espipe.server.doc_fields")
local sorting = require("espipe.server.sort")
local aggs = require("espipe.server.aggs")

local mappings = { properties = {
  tag = { type = "keyword" }, n = { type = "long" }, price = { type = "double" },
  at = { type = "date" }, title = { type = "text" }, ok = { type = "boolean" },
} }

local sources = {
  { tag = "a", n = 1, price = 1.5, at = "2024-01-01T10:00:00Z", ok = true, title = "x" },
  { tag = "b", n = 5, price = 2.5, at = "2024-01-01T23:30:00Z", ok = false },
  { tag = "a", n = 10, at = "2024-01-03T00:00:00Z", ok = true },
  { tag = { "a", "c" }, n = 20, price = 4, at = "2024-02-10" },
  { other = 1 },
}
local docs = {}
for i, s in ipairs(sources) do
  docs[i] = { _id = tostring(i), _index = "i", _source = json.decode(json.encode(s)) }
end

local ctx = {
  resolve = function(f) return doc_fields.resolve_field(mappings, f) end,
  compile = function(q) return query.compile(q, mappings) end,
  sorter = function(s) return sorting.compile_sort(s, mappings) end,
  all_docs = function() return docs end,
}

local function run(spec, list)
  local parsed, err = aggs.parse(json.decode(spec), ctx)
  assert(parsed, err and tostring(err))
  return aggs.encode(aggs.run(parsed, list or docs))
end

local function fails(spec)
  local parsed, err = aggs.parse(json.decode(spec), ctx)
  assert.is_nil(parsed)
  return err
end

describe("server aggregations", function()
  it("terms: count desc then key, size cut into sum_other_doc_count, missing", function()
    assert.equal('{"t":{"doc_count_error_upper_bound":0,"sum_other_doc_count":0,"buckets":['
      .. '{"key":"a","doc_count":3},{"key":"b","doc_count":1},{"key":"c","doc_count":1}]}}',
      run('{"t":{"terms":{"field":"tag"}}}'))
    assert.equal('{"t":{"doc_count_error_upper_bound":0,"sum_other_doc_count":2,"buckets":['
      .. '{"key":"a","doc_count":3}]}}', run('{"t":{"terms":{"field":"tag","size":1}}}'))
    assert.matches('{"key":"none","doc_count":1}', run('{"t":{"terms":{"field":"tag","missing":"none"}}}'), 1, true)
    assert.matches('"buckets":[{"key":"c","doc_count":1},{"key":"b","doc_count":1},{"key":"a","doc_count":3}]',
      run('{"t":{"terms":{"field":"tag","order":{"_key":"desc"}}}}'), 1, true)
  end)

  it("terms on booleans and numbers, ordered by a sub-aggregation", function()
    assert.matches('{"key":1,"key_as_string":"true","doc_count":2},'
      .. '{"key":0,"key_as_string":"false","doc_count":1}',
      run('{"t":{"terms":{"field":"ok"}}}'), 1, true)
    assert.matches('"buckets":[{"key":"a","doc_count":3,"m":{"value":20}},{"key":"c","doc_count":1,"m":{"value":20}},'
      .. '{"key":"b","doc_count":1,"m":{"value":5}}]',
      run('{"t":{"terms":{"field":"tag","order":{"m":"desc"}},"aggs":{"m":{"max":{"field":"n"}}}}}'), 1, true)
  end)

  it("metrics, with value_as_string on dates and nulls on no values", function()
    assert.equal('{"a":{"value":9},"c":{"value":3},"mn":{"value":1},"mx":{"value":20},"s":{"value":36},'
      .. '"vc":{"value":4}}',
      run('{"mn":{"min":{"field":"n"}},"mx":{"max":{"field":"n"}},"s":{"sum":{"field":"n"}},'
        .. '"a":{"avg":{"field":"n"}},"vc":{"value_count":{"field":"n"}},"c":{"cardinality":{"field":"tag"}}}'))
    assert.equal('{"d":{"value":1704103200000,"value_as_string":"2024-01-01T10:00:00.000Z"}}',
      run('{"d":{"min":{"field":"at"}}}'))
    assert.equal('{"a":{"value":null},"s":{"value":0}}',
      run('{"a":{"avg":{"field":"n"}},"s":{"sum":{"field":"n"}}}', {}))
    assert.equal('{"st":{"count":4,"min":1,"max":20,"avg":9,"sum":36}}', run('{"st":{"stats":{"field":"n"}}}'))
  end)

  it("date_histogram: calendar and fixed intervals, gaps filled, format and time_zone", function()
    local r = run('{"h":{"date_histogram":{"field":"at","calendar_interval":"day","format":"yyyy-MM-dd"}}}',
      { docs[1], docs[2], docs[3] })
    assert.equal('{"h":{"buckets":[{"key_as_string":"2024-01-01","key":1704067200000,"doc_count":2},'
      .. '{"key_as_string":"2024-01-02","key":1704153600000,"doc_count":0},'
      .. '{"key_as_string":"2024-01-03","key":1704240000000,"doc_count":1}]}}', r)
    r = run('{"h":{"date_histogram":{"field":"at","calendar_interval":"1d","time_zone":"+01:00","min_doc_count":1}}}',
      { docs[1], docs[2] })
    assert.equal('{"h":{"buckets":[{"key_as_string":"2024-01-01T00:00:00.000+01:00","key":1704063600000,'
      .. '"doc_count":1},{"key_as_string":"2024-01-02T00:00:00.000+01:00","key":1704150000000,"doc_count":1}]}}', r)
    r = run('{"h":{"date_histogram":{"field":"at","calendar_interval":"month"}}}')
    assert.matches('"key_as_string":"2024-01-01T00:00:00.000Z","key":1704067200000,"doc_count":3},'
      .. '{"key_as_string":"2024-02-01T00:00:00.000Z","key":1706745600000,"doc_count":1}]', r, 1, true)
    r = run('{"h":{"date_histogram":{"field":"at","fixed_interval":"12h","min_doc_count":1}}}', { docs[1], docs[2] })
    assert.matches('"key":1704067200000,"doc_count":1},{"key_as_string":"2024-01-01T12:00:00.000Z"', r, 1, true)
    r = run('{"h":{"date_histogram":{"field":"at","calendar_interval":"year",'
      .. '"extended_bounds":{"min":"2023-01-01","max":"2025-06-01"}}}}')
    assert.equal(3, select(2, r:gsub('"doc_count"', "")))
  end)

  it("histogram, range and date_range", function()
    assert.equal('{"h":{"buckets":[{"key":0,"doc_count":2},{"key":10,"doc_count":1},{"key":20,"doc_count":1}]}}',
      run('{"h":{"histogram":{"field":"n","interval":10}}}'))
    assert.equal('{"r":{"buckets":[{"key":"*-5.0","to":5,"doc_count":1},{"key":"5.0-15.0","from":5,"to":15,'
      .. '"doc_count":2},{"key":"big","from":15,"doc_count":1}]}}',
      run('{"r":{"range":{"field":"n","ranges":[{"from":5,"to":15},{"to":5},{"from":15,"key":"big"}]}}}'))
    assert.equal('{"r":{"buckets":[{"key":"*-2024-01-02","to":1704153600000,"to_as_string":"2024-01-02",'
      .. '"doc_count":2}]}}',
      run('{"r":{"date_range":{"field":"at","format":"yyyy-MM-dd","ranges":[{"to":"2024-01-02"}]}}}'))
  end)

  it("filter, filters (keyed and anonymous, other bucket), missing, nested aggs", function()
    assert.equal('{"f":{"doc_count":3,"n":{"value":31}}}',
      run('{"f":{"filter":{"term":{"tag":"a"}},"aggs":{"n":{"sum":{"field":"n"}}}}}'))
    assert.equal('{"f":{"buckets":{"as":{"doc_count":3},"bs":{"doc_count":1},"_other_":{"doc_count":1}}}}',
      run('{"f":{"filters":{"other_bucket":true,"filters":{"bs":{"term":{"tag":"b"}},"as":{"term":{"tag":"a"}}}}}}'))
    assert.equal('{"f":{"buckets":[{"doc_count":1},{"doc_count":3}]}}',
      run('{"f":{"filters":{"filters":[{"term":{"tag":"b"}},{"term":{"tag":"a"}}]}}}'))
    assert.equal('{"m":{"doc_count":2}}', run('{"m":{"missing":{"field":"price"}}}'))
    assert.matches('{"key":"a","doc_count":3,"h":{"buckets":[{"key":0,"doc_count":1},{"key":10,"doc_count":1},'
      .. '{"key":20,"doc_count":1}]}}',
      run('{"t":{"terms":{"field":"tag"},"aggs":{"h":{"histogram":{"field":"n","interval":10}}}}}'), 1, true)
  end)

  it("names aggregations with their types when typed_keys is asked", function()
    local typed = {}
    for k, v in pairs(ctx) do typed[k] = v end
    typed.typed_keys = true
    local parsed = assert(aggs.parse(json.decode('{"t":{"terms":{"field":"tag"},"aggs":{"m":{"max":{"field":"n"}}}},'
      .. '"l":{"terms":{"field":"n"}},"d":{"terms":{"field":"price"}},"h":{"date_histogram":{"field":"at",'
      .. '"calendar_interval":"year"}}}'), typed))
    local text = aggs.encode(aggs.run(parsed, docs))
    for _, key in ipairs({ '"sterms#t":', '"max#m":', '"lterms#l":', '"dterms#d":', '"date_histogram#h":' }) do
      assert.matches(key, text, 1, true)
    end
  end)

  it("composite: tuples of sources in order, paged with after and after_key, missing_bucket", function()
    local r = run('{"c":{"composite":{"size":2,"sources":[{"tag":{"terms":{"field":"tag"}}},'
      .. '{"day":{"date_histogram":{"field":"at","calendar_interval":"month","format":"yyyy-MM"}}}]}}}')
    assert.equal('{"c":{"after_key":{"tag":"a","day":"2024-02"},"buckets":['
      .. '{"key":{"tag":"a","day":"2024-01"},"doc_count":2},{"key":{"tag":"a","day":"2024-02"},"doc_count":1}]}}', r)
    r = run('{"c":{"composite":{"size":5,"after":{"tag":"a","day":"2024-02"},"sources":[{"tag":{"terms":'
      .. '{"field":"tag"}}},{"day":{"date_histogram":{"field":"at","calendar_interval":"month",'
      .. '"format":"yyyy-MM"}}}]}}}')
    assert.equal('{"c":{"after_key":{"tag":"c","day":"2024-02"},"buckets":['
      .. '{"key":{"tag":"b","day":"2024-01"},"doc_count":1},{"key":{"tag":"c","day":"2024-02"},"doc_count":1}]}}', r)
    r = run('{"c":{"composite":{"sources":[{"p":{"histogram":{"field":"price","interval":2,"order":"desc",'
      .. '"missing_bucket":true}}}]},"aggs":{"n":{"sum":{"field":"n"}}}}}')
    assert.equal('{"c":{"after_key":{"p":null},"buckets":[{"key":{"p":4},"doc_count":1,"n":{"value":20}},'
      .. '{"key":{"p":2},"doc_count":1,"n":{"value":5}},{"key":{"p":0},"doc_count":1,"n":{"value":1}},'
      .. '{"key":{"p":null},"doc_count":2,"n":{"value":10}}]}}', r)
    assert.matches("must be one of terms", fails('{"c":{"composite":{"sources":[{"x":{"range":{}}}]}}}').reason)
    assert.matches("no value for source %[t%]",
      fails('{"c":{"composite":{"after":{},"sources":[{"t":{"terms":{"field":"tag"}}}]}}}').reason)
  end)

  it("top_hits: size, sort and _source", function()
    local r = run('{"t":{"top_hits":{"size":1,"sort":[{"n":"desc"}],"_source":["n"]}}}')
    assert.equal('{"t":{"hits":{"total":{"value":5,"relation":"eq"},"max_score":null,"hits":['
      .. '{"_index":"i","_id":"4","_score":null,"_source":{"n":20},"sort":[20]}]}}}', r)
  end)

  it("takes document handles and makes hits on use when ctx.hit is given", function()
    local by_handle = {}
    for k, v in pairs(ctx) do by_handle[k] = v end
    by_handle.hit = function(i) return docs[i] end
    local parsed = assert(aggs.parse(json.decode('{"t":{"terms":{"field":"tag"},"aggs":{"top":{"top_hits":'
      .. '{"size":2,"sort":[{"n":"asc"}],"_source":false}},"f":{"filter":{"range":{"n":{"gte":10}}}}}}}'), by_handle))
    local text = aggs.encode(aggs.run(parsed, { 1, 2, 3, 4, 5 }))
    assert.matches('{"key":"a","doc_count":3,"f":{"doc_count":2},"top":{"hits":{"total":{"value":3,"relation":"eq"},'
      .. '"max_score":null,"hits":[{"_index":"i","_id":"1","_score":null,"sort":[1]},'
      .. '{"_index":"i","_id":"3","_score":null,"sort":[10]}]}}}', text, 1, true)
  end)

  it("refuses unknown types and options, text fields and bad names with 400s naming them", function()
    local err = fails('{"x":{"percentiles":{"field":"n"}}}')
    assert.same({ 400, "parsing_exception", "Unknown aggregation type [percentiles]" },
      { err.status, err.type, err.reason })
    assert.equal("[terms] unknown field [sise]", fails('{"x":{"terms":{"field":"tag","sise":1}}}').reason)
    assert.matches("not supported by espipe serve", fails('{"x":{"terms":{"field":"tag","include":"a.*"}}}').reason)
    assert.matches("^Text fields are not optimised", fails('{"x":{"terms":{"field":"title"}}}').reason)
    assert.matches("Invalid aggregation name %[a>b%]", fails('{"a>b":{"max":{"field":"n"}}}').reason)
    assert.equal("Missing definition for aggregation [x]", fails('{"x":{}}').reason)
    assert.matches("cannot accept sub%-aggregations", fails('{"x":{"max":{"field":"n"},"aggs":{}}}').reason)
    assert.matches("Unknown aggregation %[zz%]", fails('{"x":{"terms":{"field":"tag","order":{"zz":"asc"}}}}').reason)
    assert.matches("Invalid interval specified", fails('{"x":{"date_histogram":{"field":"at"}}}').reason)
    local parsed = aggs.parse(json.decode('{"h":{"date_histogram":{"field":"at","fixed_interval":"1s",'
      .. '"extended_bounds":{"min":"2000-01-01","max":"2030-01-01"}}}}'), ctx)
    local res, rerr = aggs.run(parsed, docs)
    assert.is_nil(res)
    assert.same({ 400, "too_many_buckets_exception" }, { rerr.status, rerr.type })
    assert.matches("Must be less than or equal to: %[65536%] but was %[65537%]", rerr.reason)
    assert.matches("unsupported time zone", fails(
      '{"x":{"date_histogram":{"field":"at","calendar_interval":"day","time_zone":"Europe/Paris"}}}').reason)
  end)
end)
