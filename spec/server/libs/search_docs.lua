-- The documents and mappings the query and sort specs search: text with a
-- keyword multi-field, numbers, booleans, dates (ISO and epoch millis),
-- objects and arrays of objects, missing and null values.
local json = require("espipe.server.json")

local M = {}

M.mappings = { properties = {
  title = { type = "text", fields = { keyword = { type = "keyword" } } },
  tag = { type = "keyword" },
  n = { type = "long" },
  price = { type = "double" },
  ok = { type = "boolean" },
  at = { type = "date" },
  user = { properties = { name = { type = "keyword" }, age = { type = "integer" } } },
} }

M.docs = {
  ["1"] = [[{"title":"Hello World","tag":"a","n":5,"price":1.5,"ok":true,"at":"2024-01-02T00:00:00Z",
            "user":{"name":"ann","age":30}}]],
  ["2"] = [[{"title":"hello there, world!","tag":["b","c"],"n":10,"ok":false,"at":1704240000000,
            "user":[{"name":"bob","age":20},{"name":"cy","age":40}]}]],
  ["3"] = [[{"title":"Goodbye","tag":"a","n":-1,"at":"2023-12-31","user":{"name":null}}]],
  ["4"] = [[{"other":1}]],
}
M.decoded = {}
for id, text in pairs(M.docs) do M.decoded[id] = assert(json.decode(text)) end

return M
