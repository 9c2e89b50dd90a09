-- wrk script: each connection pauses `pause_ms` after every response (a paced, near-fixed rate:
-- connections * 1000 / (pause_ms + latency_ms) requests per second), and prints the latency
-- distribution with microsecond resolution as one JSON line (hey rounds to 0.1 ms).
-- Usage: wrk -c 10 -d 10s -s bench/paced.lua URL -- 19
local pause_ms = 0

function init(args)
  pause_ms = tonumber(args[1] or "0")
end

function delay()
  return pause_ms
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "errors": %d, "status_errors": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max))
end
