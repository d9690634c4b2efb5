-- Grants the lock when nobody holds it live (holds are not re-entrant: the same holder is
-- refused too). ARGV 3 holder, 4 ttl ms (checked by the engine). The token is the name's
-- last one plus one, so it grows over every release and expiry.
local e = load_lock()
if live(e) then return fail('HELD', { holder = e.holder, exp = e.exp }) end
local token = 1
if e then token = e.last + 1 end
local exp = NOW + tonumber(ARGV[4])
redis.call('HSET', L, 'last', num(token), 'holder', ARGV[3], 'acq', num(NOW), 'exp', num(exp))
return cjson.encode({ holder = ARGV[3], token = token, acq = NOW, exp = exp })
