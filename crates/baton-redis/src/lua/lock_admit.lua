-- Admits a name to one of the namespace's name indexes (locks: before its first grant;
-- schedules: before its first put), within the index's maximum. Not a lock script: it runs
-- alone on the index's slot.
-- KEYS: 1 {<namespace>}:locks or {<namespace>}:schedules (sorted set, every score 0, so
--       ordered by name)
-- ARGV: 1 name, 2 the index's maximum (locks_max, schedules_max)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return cjson.encode({ ok = true }) end
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[2]) then return cjson.encode({ ok = false, n = n }) end
redis.call('ZADD', KEYS[1], 0, ARGV[1])
return cjson.encode({ ok = true })
