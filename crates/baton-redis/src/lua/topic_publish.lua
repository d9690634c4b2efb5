-- Records one publish in its topic's outbox, alone on the topic's slot (not a queue script).
-- The engine read the topic at `rev` and routed every message with baton_core's matching;
-- the copies are recorded only if no write changed the topic since (a subscription added or
-- removed, the topic deleted), so they follow the subscriptions as they stand. Each field of
-- the outbox is one destination queue's copies, under the token its hand-over sends with
-- (published.lua). The topic's counters are raised in the same script.
-- KEYS: 1 {<namespace>:t:<name>}:h (hash: rec, rev, pub, dlv, unm), 2 {<namespace>:t:<name>}:out
-- ARGV: 1 the rev read, 2 messages published, 3 copies, 4 unmatched, 5 n, then n pairs
--       (token, copies as JSON)
if redis.call('HEXISTS', KEYS[1], 'rec') == 0 then return cjson.encode({ err = 'NOT_FOUND' }) end
local rev = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')
if rev ~= tonumber(ARGV[1]) then return cjson.encode({ err = 'CONFLICT', rev = rev }) end
local n = tonumber(ARGV[5])
for i = 0, n - 1 do
  redis.call('HSET', KEYS[2], ARGV[6 + i * 2], ARGV[7 + i * 2])
end
redis.call('HINCRBY', KEYS[1], 'pub', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'dlv', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'unm', ARGV[4])
return cjson.encode({ ok = true })
