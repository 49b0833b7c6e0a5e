-- DELETE /session/{id} over the ids create.lua saved; once they run out it
-- counts as failures (404), which the report shows.
dofile(os.getenv("BENCH_DIR") .. "/wrk_report.lua")
local ids, i = {}, 0
for line in io.lines(os.getenv("BENCH_IDS")) do ids[#ids + 1] = line end
function request()
   i = i + 1
   local id = ids[i] or "AAAAAAAAAAAAAAAAAAAAAA"
   return wrk.format("DELETE", "/session/" .. id)
end
