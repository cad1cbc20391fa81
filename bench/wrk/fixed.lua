-- The same request over and over (conceal, create, the HTTP ceiling): BENCH_METHOD,
-- BENCH_BODY and BENCH_CTYPE; the path is the URL's. Static, so wrk builds it once.
local common = require "common"
setup = common.setup
done = common.done

wrk.method = common.env("BENCH_METHOD", "POST")
wrk.body = common.env("BENCH_BODY", nil)
wrk.headers["Content-Type"] = common.env("BENCH_CTYPE", "application/json")
wrk.headers["Accept"] = "application/json"
