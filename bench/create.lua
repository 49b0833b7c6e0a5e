-- POST /session; appends each created id to $BENCH_IDS for close.lua.
-- (response() runs in the thread's Lua state, done() in another one, so
-- the ids are written as they come, a line at a time.)
dofile(os.getenv("BENCH_DIR") .. "/wrk_report.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"ttl": 3600}'
local out
function init(args)
   local path = os.getenv("BENCH_IDS")
   if path then
      out = io.open(path, "a")
      out:setvbuf("line")
   end
end
function response(status, headers, body)
   if status ~= 201 or not out then return end
   local id = body:match('"id":"([%w_-]+)"')
   if id then out:write(id, "\n") end
end
