-- wrk body generator for POST /v1/events: batches of 1,000 new usage events (ids unique per
-- connection and request) for customers with external ids CUST-0 … CUST-1999. `token` is
-- prepended by scripts/bench-events.sh.
local n = 0
local tid = math.random(1, 1000000000)
request = function()
  n = n + 1
  local parts = {}
  for i = 1, 1000 do
    parts[i] = string.format('{"type":"usage","event_id":"w%d-%d-%d","customer_external_id":"CUST-%d","time":"2026-11-%02d T%02d:%02d:00Z","meter_category":"Virtual Machines","meter_name":"D4s v5","region":"westeurope","cost":"%d.%04d","currency":"USD"}',
      tid, n, i, (n * 1000 + i) % 2000, 1 + (n % 28), i % 24, i % 60, i % 7, (n * i) % 10000)
  end
  local body = "[" .. table.concat(parts, ",") .. "]"
  body = string.gsub(body, " T", "T")
  return wrk.format("POST", "/v1/events", {["Content-Type"]="application/json", ["Authorization"]="Bearer " .. token}, body)
end
