-- Storage-side fencing: run between lib.lua and the body of a fenced send, ack or nack, in
-- the queue's slot. The last two ARGV are the lock's name and the token the write carries
-- (the bodies read their own arguments by position from 8, so these trail them). FENCE maps
-- a lock name to the highest token that has written to this queue: a lower token is refused
-- (nothing written), an equal or higher one raises it, in the same script as the write. So
-- once a newer holder has written here, no older token ever writes here again, whatever the
-- lock's slot said when the older writer checked it.
do
  local fe = open_queue()
  if fe then return fe end
end
local FENCE_LOCK, FENCE_TOKEN = ARGV[#ARGV - 1], tonumber(ARGV[#ARGV])
local fence_floor = tonumber(redis.call('HGET', FENCE, FENCE_LOCK) or '0')
if FENCE_TOKEN < fence_floor then return fail('FENCED', { floor = fence_floor }) end
if FENCE_TOKEN > fence_floor then redis.call('HSET', FENCE, FENCE_LOCK, num(FENCE_TOKEN)) end
