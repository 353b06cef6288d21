-- Stored scripts: PUT/POST/GET/DELETE /_scripts/{id}, and the lookup that
-- a { "id": ... } script reference goes through; written to --data and
-- read back by restore(rec) (rec = { id =, script = | nil }).
local es = require("espipe.server.es_errors")
local params = require("espipe.server.params")
local painless = require("espipe.server.painless")
local meta_records = require("espipe.server.meta_records")

local M = {}

local scripts = {} -- id -> { lang =, source = }

function M.get_script(id) return scripts[id] end

function M.restore(rec)
  if type(rec.id) == "string" then scripts[rec.id] = rec.script end
end

function M.put(req)
  local body, s, e = params.body(req, true)
  if not body then return s, e end
  local script = body.script
  if type(script) ~= "table" or type(script.source) ~= "string" then
    return es.fail(400, "illegal_argument_exception", "must specify <script> for stored script")
  end
  local lang = script.lang
  if lang ~= "painless" then
    return es.fail(400, "illegal_argument_exception", lang == nil and "must specify lang for stored script"
      or ("script_lang not supported [" .. tostring(lang) .. "]"))
  end
  local _, err = painless.compile(script.source)
  if err then
    return es.envelope(400, { type = "illegal_argument_exception",
      reason = "failed to parse/compile stored script [" .. req.params.id .. "]", caused_by = err })
  end
  scripts[req.params.id] = { lang = lang, source = script.source }
  meta_records.queue({ op = "stored_script", id = req.params.id, script = scripts[req.params.id] })
  return 200, { acknowledged = true }
end

function M.get(req)
  local id = req.params.id
  local sc = scripts[id]
  if not sc then return 404, { _id = id, found = false } end
  return 200, { _id = id, found = true, script = { lang = sc.lang, source = sc.source } }
end

function M.delete(req)
  local id = req.params.id
  if not scripts[id] then
    return es.fail(404, "resource_not_found_exception", "stored script [" .. id .. "] does not exist")
  end
  scripts[id] = nil
  meta_records.queue({ op = "stored_script", id = id })
  return 200, { acknowledged = true }
end

return M
