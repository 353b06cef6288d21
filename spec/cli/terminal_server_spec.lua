-- espipe load as a person sees it: run in a real terminal (tmux, 80
-- columns), the pane captured while the job runs and after it ended.
local devserver = require "support.devserver"
local S = require "pipeline.support"
local J = require "pipeline.jobs"
local C = require "cli.support"

local HAVE_TMUX = J.exec("command -v tmux >/dev/null") == 0

local function write_docs(path, n)
  local f = assert(io.open(path, "wb"))
  for i = 1, n do
    f:write('{"@timestamp":"2026-0', i % 2 + 1, '-01T00:00:00Z","n":', i, ',"msg":"line ', i, '"}\n')
  end
  f:close()
end

describe("espipe load in an 80-column terminal #server", function()
  local server, dir, socket
  setup(function()
    server = devserver.start {}
    dir = S.tmpdir()
    -- the server's socket in the spec's own directory (tmux -L would leave it in /tmp/tmux-UID)
    socket = S.q(dir .. "/tmux.sock")
  end)
  teardown(function()
    if socket then J.exec("tmux -S " .. socket .. " kill-server 2>/dev/null") end
    if server then server.stop() end
    S.cleanup()
  end)

  -- the pane's lines, wrapped rows joined back (-J): a wrapped line shows as one longer than 80
  local function pane()
    return S.sh("tmux -S " .. socket .. " capture-pane -p -J -t job")
  end

  it("draws one progress line that never wraps, reaches 100%, then the summary block", function()
    if not HAVE_TMUX then pending("tmux is not installed (.ci/install-deps installs it)") return end
    write_docs(dir .. "/docs.ndjson", 200000)
    -- the pane stays after the job (cat waits on the terminal) so the end can be read
    local job = "cd " .. S.q(dir) .. " && " .. S.q(C.bin) .. " load docs.ndjson --index-pattern 'logs-{@timestamp:%Y.%m}'"
      .. " --url " .. server.url .. "; echo ESPIPE-EXIT=$?; exec cat"
    assert.equal(0, J.exec("tmux -S " .. socket .. " -f /dev/null new-session -d -s job -x 80 -y 30 "
      .. S.q("sh -c " .. S.q(job))))
    local during = J.wait_for(function()
      local text = pane()
      if text:find("ESPIPE-EXIT=", 1, true) then return nil end -- only a capture from before the end counts
      return text:match("(load: [^\n]*docs[^\n]*)")
    end, 120, "a progress line while the job runs")
    assert.matches("^load: +%d+%%, ", during)
    assert.matches(" docs, ", during)
    assert.matches(", %d+ retries, %d+ failed, c=%d+ b=%d+MB$", during) -- the adaptive settings stay visible
    local text = J.wait_for(function()
      local t = pane()
      return t:find("ESPIPE-EXIT=", 1, true) and t
    end, 300, "the job's end")
    assert.matches("ESPIPE%-EXIT=0", text)
    local progress_lines = 0
    for line in text:gmatch("[^\n]+") do
      assert.is_true(#line <= 80, "a line wider than the terminal: " .. line)
      if line:find("^load: ") then progress_lines = progress_lines + 1 end
    end
    assert.equal(1, progress_lines, text) -- redrawn in place, kept once at the end
    assert.matches("\nload: 100%%, 200%.0k docs, ", "\n" .. text)
    local block = text:match("(espipe load: done\n.-)\nESPIPE%-EXIT")
    assert.truthy(block, text)
    assert.matches("\n  indexed    200,000\n", block)
    assert.matches("\n  failed     0\n", block)
    assert.matches("\n  per index  logs%-2026%.01  100,000\n             logs%-2026%.02  100,000\n", block)
    assert.matches("\n  elapsed    %d+%.%ds\n", block)
    assert.matches("\n  average    [%d,]+ docs/s, %d+%.%d MB/s sent\n", block)
    assert.matches("\n  retries    0\n  tuning     c=%d+ b=%d+[kM]B at the end %(reasons in %-%-json%)$", block)
    assert.is_nil(block:find("dead letter", 1, true)) -- nothing was written to it
  end)
end)
