-- A topic's copy handed over to this queue (topics.rs): run between lib.lua and send.lua's
-- body, in the queue's slot. The last ARGV is the copy's token (`t:<topic>:<publish>:<queue>`,
-- one per publish and queue). MOVEDIN remembers handed-over tokens for MOVED_TOKEN_MS (as for
-- moves, accept.lua): a token there was sent already, so the copy is answered as the duplicate
-- it is and nothing is sent; otherwise the batch is sent and the token recorded in the same
-- script (AFTER_SEND; a refused send returns before it and records nothing). So a hand-over
-- repeated after a node died between this send and the outbox's HDEL is never a second copy.
do
  local pe = open_queue()
  if pe then return pe end
end
local PUBLISH_TOKEN = ARGV[#ARGV]
if redis.call('ZSCORE', MOVEDIN, PUBLISH_TOKEN) then
  return cjson.encode({ sent = { { id = ARGV[9], seq = 0, dup = true } } })
end
AFTER_SEND = function(out)
  redis.call('ZADD', MOVEDIN, NOW, PUBLISH_TOKEN)
  redis.call('ZREMRANGEBYSCORE', MOVEDIN, '-inf', NOW - MOVED_TOKEN_MS)
end
