-- Extends the live hold of (holder, token) to now + ttl (which may also shorten it).
-- ARGV 3 holder, 4 token, 5 ttl ms (checked by the engine).
local e = load_lock()
if not e then return fail('NOT_HELD') end
if e.holder == nil or e.last ~= tonumber(ARGV[4]) or e.holder ~= ARGV[3] then
  return fail('TOKEN_STALE', { current = current(e) })
end
if not live(e) then return fail('EXPIRED', { exp = e.exp }) end
e.exp = NOW + tonumber(ARGV[5])
redis.call('HSET', L, 'exp', num(e.exp))
return cjson.encode(view(e))
