-- wrk script: nginx-rtmp on_publish callbacks, one stream key per request.
-- args: <keys file|-> <threads> <api key> <stop after one pass: 1|0>
-- Each thread's rate is its responses over its own active time (first request to last
-- response), so a thread that ran out of keys before the end counts only while it worked.
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_usec; } bfl_timeval;
  int gettimeofday(bfl_timeval *tv, void *tz);
]]
local tv = ffi.new("bfl_timeval")
local function now_us()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000000 + tonumber(tv.tv_usec)
end

local thread_count = 0
local threads = {}

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  keys = {}
  clients = {}
  if args[1] ~= "-" then
    -- a line is "<stream key> <client id>" (the id the publish of that key is made with)
    for line in io.lines(args[1]) do
      local key, client = line:match("^(%S+)%s*(%S*)$")
      if key then
        table.insert(keys, key)
        table.insert(clients, client ~= "" and client or ("c" .. #keys - 1))
      end
    end
  end
  nthreads = tonumber(args[2])
  apikey = args[3]
  once = args[4] == "1"
  next_index = tid
  answered = 0
  first_us = 0
  last_us = 0
  mine = 0
  for k = tid, #keys - 1, nthreads do mine = mine + 1 end
end

function request()
  if first_us == 0 then first_us = now_us() end
  local headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-API-Key"] = apikey,
  }
  if #keys == 0 then
    return wrk.format("POST", nil, headers, "call=publish")
  end
  local idx = next_index % #keys
  next_index = next_index + nthreads
  local body = "app=ingest&flashver=FMLE/3.0&tcurl=rtmp://127.0.0.1/ingest&addr=127.0.0.1"
    .. "&clientid=" .. clients[idx + 1] .. "&call=publish&name=" .. keys[idx + 1] .. "&type=live"
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  answered = answered + 1
  last_us = now_us()
  if once and answered >= mine then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local status_errors = summary.errors.status
  local active_rps = 0
  for _, thread in ipairs(threads) do
    local n, t0, t1 = thread:get("answered"), thread:get("first_us"), thread:get("last_us")
    if n > 0 and t1 > t0 then active_rps = active_rps + n / ((t1 - t0) / 1e6) end
  end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "active_rps": %.1f, "p50_us": %d, "p99_us": %d, '
    .. '"mean_us": %.1f, "status_errors": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, active_rps, latency:percentile(50),
    latency:percentile(99), latency.mean, status_errors,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
