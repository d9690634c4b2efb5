-- Records a completion callback's outcome on finished message ARGV 8: ARGV 9 '1' succeeded,
-- ARGV 10 the reason (cjson string or null).
local e = open_queue()
if e then return e end
advance()
local id = ARGV[8]
local raw = redis.call('HGET', ARCH, id)
if not raw then return cjson.encode({ none = true }) end
local r = cjson.decode(raw)
local rc = r.h[#r.h].rc or 0
local reason = cjson.decode(ARGV[10])
if reason == cjson.null then reason = nil end
if ARGV[9] == '1' then
  push_history(r.h, 'callback_succeeded', rc, reason)
  local fin = nil
  for i = #r.h, 1, -1 do
    local k = r.h[i].k
    if k ~= 'callback_succeeded' and k ~= 'callback_failed' then
      fin = k
      break
    end
  end
  local by_kind = { dead_lettered = 'DEAD_LETTERED', expired = 'EXPIRED', purged = 'PURGED' }
  r.s = by_kind[fin] or 'COMPLETED'
  redis.call('ZREM', CBFAIL, id)
else
  push_history(r.h, 'callback_failed', rc, reason)
  r.s = 'CALLBACK_FAILED'
  redis.call('ZADD', CBFAIL, redis.call('ZSCORE', ARCHQ, id) or NOW, id)
end
redis.call('HSET', ARCH, id, cjson.encode(r))
return cjson.encode({ s = r.s, h = r.h })
