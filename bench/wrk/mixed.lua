-- Read-heavy mix: BENCH_WRITE_PCT percent creates (BENCH_METHOD, BENCH_PATH, BENCH_BODY,
-- BENCH_CTYPE), the rest GETs of paths picked at random from BENCH_KEYS, which reads
-- never consume (the harness writes the read kinds into that file in their proportions).
local common = require "common"
setup = common.setup
done = common.done

local reads, write_pct, create = {}, 10, nil

function init(args)
  reads = common.my_slice()
  write_pct = tonumber(common.env("BENCH_WRITE_PCT", "10"))
  local headers = { ["Content-Type"] = common.env("BENCH_CTYPE", "application/json"),
                    ["Accept"] = "application/json" }
  create = wrk.format(common.env("BENCH_METHOD", "POST"), common.env("BENCH_PATH", "/"),
                      headers, common.env("BENCH_BODY", nil))
  math.randomseed(os.time() + tonumber(wrk.thread:get("id")))
end

function request()
  if math.random(100) <= write_pct then
    return create
  end
  return wrk.format("GET", reads[math.random(#reads)])
end
