-- Creates the queue, or answers the existing one (the engine compares the attributes).
-- ARGV 8 config (engine's encoding), 9 fifo, 10 retention, 11 max depth, 12 dead-letter
-- queue, 13 max receive count, 14 retry base, 15 retry max, 16 epoch.
if redis.call('EXISTS', H) == 1 then
  local v = view()
  v.existing = true
  return cjson.encode(v)
end
redis.call('HSET', H, 'cfg', ARGV[8], 'fifo', ARGV[9], 'ret', ARGV[10], 'maxd', ARGV[11],
  'dlq', ARGV[12], 'mrc', ARGV[13], 'rbase', ARGV[14], 'rmax', ARGV[15], 'epoch', ARGV[16],
  'cver', '1', 'next_seq', '1', 'next_lease', '1', 'created', num(NOW), 'modified', num(NOW),
  'tags', '{}', 'attrs', '{}', 'nvis', '0')
local v = view()
v.existing = false
return cjson.encode(v)
