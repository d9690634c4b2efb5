-- Sets a lease to end ARGV 11 ms from now (0 releases it). ARGV 8 rule ('c' / 'a' as in ack),
-- 9 seq, 10 lease.
local e = open_queue()
if e then return e end
advance()
local rule, seq, lease, t = ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local m, why = nil, nil
if rule == 'c' then
  m, why = current(seq, lease)
  if not m then return cjson.encode({ e = why }) end
else
  if not issued(seq, lease) then return cjson.encode({ e = 'I' }) end
  m = load(seq)
  if not m then return cjson.encode({ r = 'gone' }) end
  if m.s ~= 'f' then return cjson.encode({ r = 'not_in_flight' }) end
end
if t == 0 then
  count('nacked_total')
  end_lease(seq, m, 0, 'released')
  wake()
else
  m.at = NOW + math.min(t, VISIBILITY_MAX_MS)
  save(seq, m)
  redis.call('ZADD', LEASES, m.at, num(seq))
end
return cjson.encode({ r = 'changed', outbox = redis.call('HLEN', OUT) })
