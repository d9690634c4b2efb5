-- Gives messages back by receipt. ARGV 8 delay ms ('' = the retry backoff or now), 9 n, then
-- seq and lease per receipt.
local e = open_queue()
if e then return e end
advance()
local n = tonumber(ARGV[9])
local out = {}
for i = 0, n - 1 do
  local seq, lease = tonumber(ARGV[10 + 2 * i]), tonumber(ARGV[11 + 2 * i])
  local m, why = current(seq, lease)
  if m then
    count('nacked_total')
    local d
    if ARGV[8] ~= '' then d = math.min(tonumber(ARGV[8]), VISIBILITY_MAX_MS) else d = retry_delay(m.rc, seq) end
    end_lease(seq, m, d, 'nacked')
    out[#out + 1] = { ok = true }
  else
    out[#out + 1] = { e = why }
  end
end
wake()
return cjson.encode({ r = out, outbox = redis.call('HLEN', OUT) })
