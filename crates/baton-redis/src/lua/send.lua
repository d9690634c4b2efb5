-- Enqueues a batch atomically. ARGV 8 n, then per entry: id, group, dedup (effective),
-- delay ms (effective), notify, payload. A message id that is live here already answers its
-- seq and changes nothing, so a send retried after a lost answer lands once.
local e = open_queue()
if e then return e end
advance()
local n = tonumber(ARGV[8])
if C.maxd then
  local depth = redis.call('ZCARD', SEQS)
  local fresh, n_new = {}, 0
  for i = 0, n - 1 do
    local b = 9 + i * 6
    local id, d = ARGV[b], ARGV[b + 2]
    if redis.call('HEXISTS', IDS, id) == 0 then
      if d == '' then
        n_new = n_new + 1
      elseif redis.call('HEXISTS', DEDUP, d) == 0 and not fresh[d] then
        fresh[d] = true
        n_new = n_new + 1
      end
    end
  end
  if depth + n_new > C.maxd then
    return fail('QUEUE_FULL', { depth = depth, max_depth = C.maxd })
  end
end
local out = {}
local woke = false
for i = 0, n - 1 do
  local b = 9 + i * 6
  local id, g, d, delay, notify, payload = ARGV[b], ARGV[b + 1], ARGV[b + 2],
    tonumber(ARGV[b + 3]), ARGV[b + 4], ARGV[b + 5]
  local live = redis.call('HGET', IDS, id)
  if live then
    out[#out + 1] = { id = id, seq = tonumber(live), dup = false }
  else
    count('sent_total')
    local orig = nil
    if d ~= '' then orig = redis.call('HGET', DEDUP, d) end
    if orig then
      count('duplicates_total')
      local sp = string.find(orig, ' ', 1, true)
      out[#out + 1] = { id = string.sub(orig, 1, sp - 1), seq = tonumber(string.sub(orig, sp + 1)), dup = true }
    else
      local seq = C.next_seq
      C.next_seq = seq + 1
      if d ~= '' then
        redis.call('HSET', DEDUP, d, id .. ' ' .. num(seq))
        redis.call('ZADD', DEDUPX, NOW + DEDUP_WINDOW_MS, d)
      end
      redis.call('HSET', MSG, num(seq), payload)
      local m = { id = id, rc = 0, sent = NOW, h = { { k = 'sent', at = NOW, rc = 0 } } }
      if g ~= '' then m.g = g end
      if d ~= '' then m.d = d end
      if notify ~= '' then m.n = notify end
      insert(seq, m, NOW + delay)
      if m.s == 'v' then woke = true end
      out[#out + 1] = { id = id, seq = seq, dup = false }
    end
  end
end
save_counters()
if woke then wake() end
if AFTER_SEND then AFTER_SEND(out) end
return cjson.encode({ sent = out })
