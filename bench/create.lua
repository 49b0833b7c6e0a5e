-- POST /session; keeps the created ids in $BENCH_IDS for close.lua.
dofile(os.getenv("BENCH_DIR") .. "/wrk_report.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"ttl": 3600}'
local ids = {}
function response(status, headers, body)
   if status ~= 201 then return end
   local id = body:match('"id":"([%w_-]+)"')
   if id then ids[#ids + 1] = id end
end
local report = done
function done(summary, latency, requests)
   report(summary, latency, requests)
   local path = os.getenv("BENCH_IDS")
   if path then
      local f = io.open(path, "a")
      for _, id in ipairs(ids) do f:write(id, "\n") end
      f:close()
   end
end
