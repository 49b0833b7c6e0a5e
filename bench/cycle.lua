-- GET with a session token per request, taken in turn from the file
-- BENCH_TOKENS (one per line): validate over many sessions, each request
-- another session (and another token to verify), so no cache helps. With a
-- file of one token it is the same Lua path for one session, to compare.
-- The requests are formatted once, in init (after wrk has set the Host
-- header): formatting each request in request() took wrk a whole CPU, so
-- the load generator, not the service, set the pace.
dofile(os.getenv("BENCH_DIR") .. "/wrk_report.lua")
local reqs, i, n = {}, 0, 0
function init(args)
   for line in io.lines(os.getenv("BENCH_TOKENS")) do
      reqs[#reqs + 1] = wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. line })
   end
   n = #reqs
end
function request()
   i = i % n + 1
   return reqs[i]
end
