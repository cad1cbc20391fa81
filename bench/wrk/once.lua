-- Consume-once requests (reveal, SnapPass retrieve): each line of BENCH_KEYS is a path,
-- sent exactly once with BENCH_METHOD and BENCH_BODY. A thread that runs out stops
-- rather than ask for links that are gone, and says so in the summary.
local common = require "common"
setup = common.setup
done = common.done

local paths, sent = {}, 0
local method, body, headers

function init(args)
  paths = common.my_slice()
  method = common.env("BENCH_METHOD", "POST")
  body = common.env("BENCH_BODY", nil)
  headers = { ["Content-Type"] = common.env("BENCH_CTYPE", "application/json") }
end

function request()
  sent = sent + 1
  local path = paths[sent]
  if path == nil then
    wrk.thread:set("exhausted", 1)
    wrk.thread:stop()
    path = paths[#paths] or "/"
  end
  return wrk.format(method, path, headers, body)
end
