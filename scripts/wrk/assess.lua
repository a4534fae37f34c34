-- wrk body generator for POST /v1/signups/assess: a distinct company, e-mail, phone, device and
-- IP per request (so velocity rules stay quiet and every sign-up is approved and creates a
-- customer). `token` is prepended by scripts/bench-assess.sh.
local n = 0
local tid = math.random(1, 1000000)
request = function()
  n = n + 1
  local k = tid .. "-" .. n
  local body = string.format('{"company":{"name":"Bench %s","domain":"b%s.example.com","country":"GB"},"contact":{"email":"ops@b%s.example.com","phone":"+44207%07d"},"ip":"10.%d.%d.%d","device_id":"d%s","payment_instrument":{"type":"bank_transfer"},"cloud_instance":"global"}', k, k, k, (tid*7 + n) % 10000000, tid % 250, math.floor(n/250) % 250, n % 250, k)
  return wrk.format("POST", "/v1/signups/assess", {["Content-Type"]="application/json", ["Authorization"]="Bearer " .. token}, body)
end
