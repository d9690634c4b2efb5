-- Finishes messages by receipt. ARGV 8 rule ('c': the current lease only; 'a': any receipt
-- issued for the message, SQS's DeleteMessage), 9 n, then seq and lease per receipt.
local e = open_queue()
if e then return e end
advance()
local rule, n = ARGV[8], tonumber(ARGV[9])
local out = {}
for i = 0, n - 1 do
  local seq, lease = tonumber(ARGV[10 + 2 * i]), tonumber(ARGV[11 + 2 * i])
  local m, why = nil, nil
  if rule == 'c' then
    m, why = current(seq, lease)
  elseif not issued(seq, lease) then
    why = 'I'
  else
    m = load(seq)
    if not m then
      why = 'G'
    elseif FIFO and m.s ~= 'f' then
      m, why = nil, 'S'
    end
  end
  if m then
    finish(seq, m, 'acked', 'COMPLETED', 'acked_total')
    out[#out + 1] = { id = m.id, sent = m.sent, rc = m.rc, n = m.n }
  else
    out[#out + 1] = { e = why }
  end
end
return cjson.encode({ r = out, outbox = redis.call('HLEN', OUT) })
