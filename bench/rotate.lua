-- wrk script used by bench/load.py: POST /webhook with bodies rotated from a templates
-- file (one JSON body per line); every "@@ID@@" becomes a request id unique to this run
-- (2 hex digits of run, 8 of counter), so no two requests carry the same alert.
-- Arguments after "--": TEMPLATES_FILE RUN_HEX. Prints one "BENCH_JSON {...}" line.
local templates = {}
local run = "00"
local counter = 0

function init(args)
  for line in io.lines(args[1]) do
    local parts, start = {}, 1
    while true do
      local s, e = string.find(line, "@@ID@@", start, true)
      if not s then
        parts[#parts + 1] = string.sub(line, start)
        break
      end
      parts[#parts + 1] = string.sub(line, start, s - 1)
      start = e + 1
    end
    templates[#templates + 1] = parts
  end
  run = args[2]
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local parts = templates[(counter % #templates) + 1]
  local body = table.concat(parts, run .. string.format("%08x", counter))
  return wrk.format("POST", "/webhook", nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"status_errors":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
