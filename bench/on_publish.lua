-- wrk script: nginx-rtmp on_publish callbacks, one stream key per request.
-- args: <keys file|-> <threads> <api key> <stop after one pass: 1|0>
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
  mine = 0
  for k = tid, #keys - 1, nthreads do mine = mine + 1 end
end

function request()
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
  if once and answered >= mine then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local status_errors = summary.errors.status
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "mean_us": %.1f, '
    .. '"status_errors": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, status_errors,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
