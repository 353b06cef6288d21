-- espipe worker: internal. One worker of a job that a parent started with
-- --workers (espipe.pipeline.worker_job): its share arrives as one JSON line
-- on stdin, its progress and summary leave as JSON lines on stdout.
local worker_job = require "espipe.pipeline.worker_job"

local COMMANDS = { reindex = true, export = true, load = true }

local function run()
  local job, err = worker_job.read_job()
  if job and not COMMANDS[job.command] then err, job = "cannot run " .. tostring(job.command) .. " as a worker", nil end
  if not job then
    io.stderr:write("espipe worker: ", err, "\n")
    return 2
  end
  return require("espipe.cli." .. job.command).run(job.argv, job.worker)
end

return { summary = "internal: one worker process of a job started with --workers",
  usage = "usage: espipe worker   (internal: started by --workers, reads its share on stdin)", flags = {}, run = run }
