-- Replaces the attributes (not the kind); ARGV 8..15 as in create.
local e = open_queue()
if e then return e end
if (ARGV[9] == '1') ~= FIFO then return fail('KIND') end
advance()
redis.call('HSET', H, 'cfg', ARGV[8], 'fifo', ARGV[9], 'ret', ARGV[10], 'maxd', ARGV[11],
  'dlq', ARGV[12], 'mrc', ARGV[13], 'rbase', ARGV[14], 'rmax', ARGV[15], 'modified', num(NOW))
redis.call('HINCRBY', H, 'cver', 1)
wake()
return cjson.encode(view())
