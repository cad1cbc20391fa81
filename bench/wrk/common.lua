-- Shared by every workload: thread ids, each thread's own slice of a key file, and one
-- machine-readable summary line for the harness (bench/load.py parses it).
local common = {}
local threads = {}

function common.setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

function common.env(name, default)
  local value = os.getenv(name)
  if value == nil or value == "" then
    return default
  end
  return value
end

-- Lines i with (i - 1) % count == id: threads never share a key, so a key file of
-- consume-once links is used exactly once across the run.
function common.slice(path, id, count)
  local lines, i = {}, 0
  for line in io.lines(path) do
    if i % count == id then
      lines[#lines + 1] = line
    end
    i = i + 1
  end
  return lines
end

function common.my_slice()
  local id = tonumber(wrk.thread:get("id"))
  return common.slice(os.getenv("BENCH_KEYS"), id, tonumber(os.getenv("BENCH_THREADS")))
end

-- A count every thread keeps (thread:set), summed over them; 0 where none kept it.
local function total(name)
  local sum = 0
  for _, thread in ipairs(threads) do
    sum = sum + (tonumber(thread:get(name)) or 0)
  end
  return sum
end

function common.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "exhausted_threads": %d, "lifecycles_started": %d, '
      .. '"lifecycles_finished": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, total("exhausted"),
    total("started"), total("finished")))
end

return common
