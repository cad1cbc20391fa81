-- SnapPass's lifecycle, chained on responses: create (form POST, JSON answer with the
-- link) -> retrieve (POST to the link, which consumes it). SnapPass has no receipt.
local common = require "common"
setup = common.setup
done = common.done

local queue = {}
local create

function init(args)
  local form = { ["Content-Type"] = "application/x-www-form-urlencoded",
                 ["Accept"] = "application/json" }
  create = wrk.format("POST", "/", form, os.getenv("BENCH_BODY"))
end

function request()
  return table.remove(queue, 1) or create
end

function response(status, headers, body)
  if status ~= 200 then
    return
  end
  local path = body:match('"link": *"https?://[^/]+(/[^"]+)"')
  if path then
    queue[#queue + 1] = wrk.format("POST", path)
  end
end
