-- Leases up to ARGV 8 visible messages for ARGV 9 ms.
local e = open_queue()
if e then return e end
advance()
local max, vis = tonumber(ARGV[8]), tonumber(ARGV[9])
local inflight = redis.call('ZCARD', LEASES)
local room = INFLIGHT_MAX - inflight
if room <= 0 then
  local nvis = tonumber(redis.call('HGET', H, 'nvis') or '0')
  if FIFO or nvis == 0 then
    return cjson.encode({ d = {}, next = next_visible_at(), outbox = redis.call("HLEN", OUT), now = NOW })
  end
  return fail('TOO_MANY_IN_FLIGHT', { in_flight = inflight })
end
local n = math.min(max, room)
local taken = {}
if not FIFO then
  local popped = redis.call('ZPOPMIN', VIS, n)
  for i = 1, #popped, 2 do
    local seq = tonumber(popped[i])
    taken[#taken + 1] = { seq, load(seq) }
  end
else
  while #taken < n do
    local a = redis.call('ZPOPMIN', AVAIL, 1)
    if not a[1] then break end
    local g = a[1]
    local before = #taken
    while #taken < n do
      local seq = group_head(g)
      if not seq then break end
      local m = load(seq)
      if m.s ~= 'v' then break end
      redis.call('ZREM', GPEND, gmember(g, seq))
      redis.call('HINCRBY', GFLIGHT, g, 1)
      taken[#taken + 1] = { seq, m }
    end
    if #taken == before then refresh(g) end
  end
end
local deadline = NOW + vis
local out = {}
for _, t in ipairs(taken) do
  local seq, m = t[1], t[2]
  local lease = C.next_lease
  C.next_lease = lease + 1
  m.s = 'f'
  m.at = deadline
  m.l = lease
  m.rc = m.rc + 1
  if not m.fr then m.fr = NOW end
  push_history(m.h, 'received', m.rc, nil)
  count('nvis', -1)
  redis.call('ZADD', LEASES, deadline, num(seq))
  count('received_total')
  save(seq, m)
  out[#out + 1] = { seq = seq, l = lease, id = m.id, rc = m.rc, fr = m.fr, sent = m.sent, g = m.g,
    d = m.d, dls = m.dls, p = redis.call('HGET', MSG, num(seq)) }
end
save_counters()
return cjson.encode({ d = out, next = next_visible_at(), outbox = redis.call("HLEN", OUT), now = NOW })
