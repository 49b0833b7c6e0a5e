-- The shape of real traffic: per 20 requests, 17 validate, 2 read, 1 create.
dofile(os.getenv("BENCH_DIR") .. "/wrk_report.lua")
local n = 0
local caller = "Bearer " .. os.getenv("BENCH_CALLER")
local session = "Bearer " .. os.getenv("BENCH_SESSION")
local sid = os.getenv("BENCH_SID")
function request()
   n = n + 1
   local k = n % 20
   if k == 0 then
      return wrk.format("POST", "/session", { ["Authorization"] = caller }, "")
   elseif k <= 2 then
      return wrk.format("GET", "/session/" .. sid, { ["Authorization"] = caller })
   end
   return wrk.format("GET", "/validate", { ["Authorization"] = session })
end
