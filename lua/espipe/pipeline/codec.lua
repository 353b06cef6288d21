-- Streaming gzip/zstd from the C core (csrc/stream_codec.c).
--   codec.detect(bytes)          -> "gzip" | "zstd" | nil
--   codec.decoder(name)          -> d with d:push(s), d:pull(max), d:finish()
--   codec.encoder(name[, level]) -> e with e:compress(s), e:finish()
local core = require "espipe.core"

local fns = core
if not core.decoder then
  -- Older builds registered the codec only as its own entry point in core.so.
  local path = package.searchpath and package.searchpath("espipe.core", package.cpath)
  local open = path and package.loadlib(path, "luaopen_espipe_stream_codec")
  if not open then error("espipe.core lacks the stream codec (rebuild with `make`)", 0) end
  fns = open()
end

return {
  detect = fns.detect_compression,
  decoder = fns.decoder,
  encoder = fns.encoder,
}
