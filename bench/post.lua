-- wrk script for bench/ingest.sh: a small JSON alert per request, each with
-- its own number so no two bodies are equal.
local n = 0
local thread_id = 0
local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  thread_id = id or 0
end

request = function()
  n = n + 1
  local body = string.format('{"n": %d, "thread": %d, "host": "web%d", "alert": "DiskUsageHigh", "severity": "warning", "value": 91.5}', n, thread_id, n % 50)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
