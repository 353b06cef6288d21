-- Streaming gzip/zstd from the C core (csrc/stream_codec.c).
--   codec.detect(bytes)          -> "gzip" | "zstd" | nil
--   codec.decoder(name)          -> d with d:push(s), d:pull(max), d:finish()
--   codec.encoder(name[, level]) -> e with e:compress(s), e:finish()
local core = require "espipe.core"

return {
  detect = core.detect_compression,
  decoder = core.decoder,
  encoder = core.encoder,
}
