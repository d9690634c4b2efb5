-- Accepts a move handed over from another queue's outbox: ARGV 8 its token, 9 the move.
-- Idempotent: a token accepted before, or a message id live here, changes nothing.
local e = open_queue()
if e then return e end
advance()
local token = ARGV[8]
if redis.call('ZSCORE', MOVEDIN, token) then return cjson.encode({ dup = true }) end
redis.call('ZADD', MOVEDIN, NOW, token)
redis.call('ZREMRANGEBYSCORE', MOVEDIN, '-inf', NOW - MOVED_TOKEN_MS)
local mv = cjson.decode(ARGV[9])
if redis.call('HEXISTS', IDS, mv.id) == 1 then return cjson.encode({ dup = true }) end
local g = mv.g
if FIFO and not g then g = mv.src end
local seq = C.next_seq
C.next_seq = seq + 1
unarchive(mv.id)
count('moved_in_total')
local h = mv.h
if mv.kind ~= 'dead_lettered' then push_history(h, mv.kind, 0, 'from ' .. mv.src) end
redis.call('HSET', MSG, num(seq), mv.p)
local m = { id = mv.id, g = g, d = mv.d, n = mv.n, rc = 0, sent = mv.sent, h = h, dls = mv.dls }
insert(seq, m, NOW)
save_counters()
wake()
return cjson.encode({ accepted = true })
