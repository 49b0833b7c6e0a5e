-- GET with a session token per request, taken in turn from the file
-- BENCH_TOKENS (one per line): validate over many sessions, each request
-- another session (and another token to verify), so no cache helps. With a
-- file of one token it is the same Lua path for one session, to compare.
dofile(os.getenv("BENCH_DIR") .. "/wrk_report.lua")
local heads, i = {}, 0
for line in io.lines(os.getenv("BENCH_TOKENS")) do
   heads[#heads + 1] = { ["Authorization"] = "Bearer " .. line }
end
local n = #heads
function request()
   i = i % n + 1
   return wrk.format("GET", nil, heads[i])
end
