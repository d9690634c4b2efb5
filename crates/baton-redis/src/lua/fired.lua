-- A schedule's firing to this queue: run between lib.lua and send.lua's body, in the
-- queue's slot. The last two ARGV are the schedule's name and the tick fired (the body reads
-- its own arguments by position from 8, so these trail them). FIRED maps a schedule name to
-- "tick id seq" of the last tick of it sent here: a tick at or below it was sent already and
-- is answered as the duplicate it is, with that message, whatever the dedup window; a later
-- tick is sent and raises the marker in the same script (AFTER_SEND, called by the body once
-- the batch is in; a refused send returns before it and raises nothing). So a firing whose
-- step was lost (a node died between the send and the schedule's compare-and-set) is never
-- a second message when it is fired again, by this node or another.
do
  local fe = open_queue()
  if fe then return fe end
end
local FIRED_SCHEDULE, FIRED_TICK = ARGV[#ARGV - 1], tonumber(ARGV[#ARGV])
do
  local last = redis.call('HGET', FIRED, FIRED_SCHEDULE)
  if last then
    local a = string.find(last, ' ', 1, true)
    local b = string.find(last, ' ', a + 1, true)
    if FIRED_TICK <= tonumber(string.sub(last, 1, a - 1)) then
      return cjson.encode({ sent = { { id = string.sub(last, a + 1, b - 1),
        seq = tonumber(string.sub(last, b + 1)), dup = true } } })
    end
  end
end
AFTER_SEND = function(out)
  local sent = out[1]
  redis.call('HSET', FIRED, FIRED_SCHEDULE,
    num(FIRED_TICK) .. ' ' .. sent.id .. ' ' .. num(sent.seq))
end
