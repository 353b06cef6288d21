-- Keeps freed request memory in the worker's heap. nginx allocates each
-- request body (8 MB _bulk bodies) with malloc; glibc maps and unmaps such
-- a block for every request, and faulting 2 000 fresh pages in per body
-- cost more CPU than parsing it. With a mmap threshold above the largest
-- in-memory body (nginx_conf keeps bodies up to 16 MB in memory) and a trim
-- threshold above that, the same heap block serves the next body.
local ffi = require("ffi")

local M = {}

local M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3 -- glibc's <malloc.h>

pcall(ffi.cdef, "int mallopt(int param, int value);")

-- -> true | nil, err (not glibc: nothing changes)
function M.keep_freed(bytes)
  local ok, mallopt = pcall(function() return ffi.C.mallopt end)
  if not ok then return nil, "no mallopt in this C library" end
  -- glibc caps the mmap threshold at 32 MB (64-bit)
  local mmap = math.min(bytes, 32 * 1024 * 1024)
  if mallopt(M_MMAP_THRESHOLD, mmap) ~= 1 or mallopt(M_TRIM_THRESHOLD, 4 * mmap) ~= 1 then
    return nil, "mallopt refused"
  end
  return true
end

return M
