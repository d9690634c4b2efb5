-- Compare-and-set of one schedule's record, alone on the schedule's slot (not a queue or
-- lock script). The engine reads the hash, decides the change with baton_core::schedule and
-- writes it here only if nothing was written since its read: every write raises `rev`, so
-- an equal `rev` means the version, position and figures the decision started from are still
-- the stored ones. A refusal writes nothing. The hash itself is never deleted: `last` (the
-- last version given to the name) outlives a delete, so versions rise over the name's life.
-- KEYS: 1 {<namespace>:s:<name>}:h (hash: rec = the record, JSON; rev; last)
-- ARGV: 1 the rev read, 2 the new record ('' = delete it), 3 the name's last version
local rev = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')
if rev ~= tonumber(ARGV[1]) then return cjson.encode({ err = 'CONFLICT', rev = rev }) end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], 'rec')
else
  redis.call('HSET', KEYS[1], 'rec', ARGV[2])
end
redis.call('HSET', KEYS[1], 'rev', string.format('%d', rev + 1), 'last', ARGV[3])
return cjson.encode({ rev = rev + 1 })
