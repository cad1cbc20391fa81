-- The service's full lifecycle, chained on responses: conceal -> reveal -> receipt.
-- A thread keeps a queue of follow-ups; a connection that finds it empty starts a new
-- conceal. Keys come from the response bodies (receipt key first, then share key), in
-- any JSON spacing: when the service's bodies turned compact (orjson, 7f8b0e2) patterns
-- that expected `": "` matched nothing, and this ran conceals only until the harness
-- began to check that lifecycles finish (bench/load.py, `chained`).
local common = require "common"
setup = common.setup
done = common.done

local queue, receipt_of = {}, {}
local started, finished = 0, 0 -- lifecycles, counted for the harness (common.done)
local conceal, json

-- BENCH_PAUSE_MS: each connection waits this long before each request, so the load runs
-- at a set fraction of the machine instead of saturating it (wrk does not count the
-- pause in a request's latency).
local pause = tonumber(os.getenv("BENCH_PAUSE_MS") or "")
if pause then
  function delay()
    return pause
  end
end

function init(args)
  json = { ["Content-Type"] = "application/json" }
  conceal = wrk.format("POST", "/api/v2/secret/conceal", json, os.getenv("BENCH_BODY"))
end

function request()
  return table.remove(queue, 1) or conceal
end

function response(status, headers, body)
  if status ~= 200 then
    return
  end
  local share = body:match('"secret_identifier": *"(%w+)"')
  if share then -- the conceal: reveal it next
    receipt_of[share] = body:match('"identifier": *"(%w+)"')
    started = started + 1
    wrk.thread:set("started", started)
    local reveal = "/api/v2/secret/" .. share .. "/reveal"
    queue[#queue + 1] = wrk.format("POST", reveal, json, '{"continue": true}')
    return
  end
  local key = body:match('"key": *"(%w+)"')
  local receipt = key and receipt_of[key]
  if receipt then -- the reveal (its record's key is the share key): the receipt next
    receipt_of[key] = nil
    queue[#queue + 1] = wrk.format("GET", "/api/v2/private/" .. receipt)
    return
  end
  finished = finished + 1 -- the receipt (its key is its own), the last step
  wrk.thread:set("finished", finished)
end
