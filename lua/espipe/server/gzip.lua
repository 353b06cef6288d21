-- gzip/deflate request bodies, inflated through zlib via LuaJIT's FFI (zlib
-- is part of every Debian system; LuaJIT has no inflater of its own). The
-- output is bounded: past `limit` bytes inflation stops and reports it.
local ffi = require("ffi")

ffi.cdef [[
typedef struct z_stream_s {
  const unsigned char *next_in; unsigned avail_in; unsigned long total_in;
  unsigned char *next_out; unsigned avail_out; unsigned long total_out;
  const char *msg; void *state;
  void *zalloc; void *zfree; void *opaque;
  int data_type; unsigned long adler; unsigned long reserved;
} z_stream;
const char *zlibVersion(void);
int inflateInit2_(z_stream *strm, int windowBits, const char *version, int stream_size);
int inflate(z_stream *strm, int flush);
int inflateEnd(z_stream *strm);
]]

local zlib = ffi.load("z")

local M = {}

local Z_OK, Z_STREAM_END, Z_BUF_ERROR = 0, 1, -5
local CHUNK = 256 * 1024

-- inflate(data, limit) -> string | nil, "too_large" | nil, message
-- windowBits 32+15 accepts both gzip and zlib headers; raw deflate is
-- retried with -15 (what some clients send as Content-Encoding: deflate).
function M.inflate(data, limit, raw)
  local stream = ffi.new("z_stream")
  local rc = zlib.inflateInit2_(stream, raw and -15 or 47, zlib.zlibVersion(), ffi.sizeof(stream))
  if rc ~= Z_OK then return nil, "inflateInit failed (" .. rc .. ")" end
  local out = ffi.new("unsigned char[?]", CHUNK)
  local parts, total = {}, 0
  stream.next_in = ffi.cast("const unsigned char *", data)
  stream.avail_in = #data
  local err
  while true do
    stream.next_out = out
    stream.avail_out = CHUNK
    rc = zlib.inflate(stream, 0)
    local n = CHUNK - stream.avail_out
    if n > 0 then
      total = total + n
      if total > limit then err = "too_large" break end
      parts[#parts + 1] = ffi.string(out, n)
    end
    if rc == Z_STREAM_END then break end
    if rc ~= Z_OK and not (rc == Z_BUF_ERROR and n > 0) then
      err = stream.msg ~= nil and ffi.string(stream.msg) or ("inflate error " .. rc)
      break
    end
    if stream.avail_in == 0 and n == 0 then err = "truncated compressed body" break end
  end
  zlib.inflateEnd(stream)
  if err then
    if not raw and err ~= "too_large" and total == 0 then
      return M.inflate(data, limit, true)
    end
    return nil, err
  end
  return table.concat(parts)
end

return M
