-- The requests a job makes before and after its data (refresh, count, check
-- and create the destination, read settings and mappings), sent through the
-- job's retry policy (espipe.client.retry) like every other request: what
-- can succeed later is retried for retry_for, and a failure for good is
-- returned (nil, err) for the job to stop on, never noted and passed over.
--
--   local setup = require("espipe.pipeline.setup").new(client, policy)
--   setup:refresh(index)             -> true | nil, err
--   setup:count(index, query)        -> n | nil, err
--   setup:exists(index)              -> true | false | nil, err
--   setup:get(index, "_settings")    -> decoded body | nil, err   ("_mapping" too)
--   setup:create(index, body)        -> true | nil, err (an existing index is fine)
local json = require "espipe.json"
local segment = require("espipe.client.url").segment
local version = require("espipe.client.version")
local wire = require("espipe.client.wire")

local M = {}
local Setup = {}
Setup.__index = Setup

local HEADERS = { ["Content-Type"] = "application/json" }

function M.new(client, policy)
  return setmetatable({ client = client, policy = policy }, Setup)
end

function Setup:_send(method, path, body)
  return self.client:json_request_retrying({ method = method, path = path, headers = HEADERS,
    body = body and json.encode(body) or nil }, self.policy)
end

local function path_of(index) return "/" .. segment(index, "index", 4) end

function Setup:refresh(index)
  local r, err = self:_send("POST", path_of(index) .. "/_refresh")
  if not r then return nil, err end
  return true
end

function Setup:count(index, query)
  local r, err = self:_send("POST", path_of(index) .. "/_count", query and { query = query } or nil)
  if not r then return nil, err end
  return tonumber(r.count)
end

function Setup:exists(index)
  local res, err = self.client:request_retrying({ method = "HEAD", path = path_of(index) }, self.policy)
  if res then return true end
  if err.kind == "http" and err.status == 404 then return false end
  return nil, err
end

-- (a mapping comes back without 6.x's type level: one shape from every release)
function Setup:get(index, what)
  local r, err = self:_send("GET", path_of(index) .. "/" .. what)
  if r and what == "_mapping" then wire.untyped_mappings(version.known(self.client), r) end
  return r, err
end

function Setup:create(index, body)
  local r, err = self:_send("PUT", path_of(index), body)
  if r or (err.type == "resource_already_exists_exception") then return true end
  return nil, err
end

return M
