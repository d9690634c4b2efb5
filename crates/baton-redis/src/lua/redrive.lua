-- Takes up to ARGV 8 messages not in flight, oldest first, into the outbox for redrive:
-- to ARGV 9, or ('' there) each to its dead-letter source when that is one of the ARGV 10
-- origins that follow.
local e = open_queue()
if e then return e end
advance()
local ok = {}
for i = 1, tonumber(ARGV[10]) do ok[ARGV[10 + i]] = true end
local max = tonumber(ARGV[8])
local moved = 0
local list = redis.call('ZRANGE', BYSENT, 0, 4999)
for _, p in ipairs(list) do
  if moved >= max then break end
  local seq = tonumber(p)
  local m = load(seq)
  if m and m.s ~= 'f' then
    local dest = nil
    if ARGV[9] ~= '' then dest = ARGV[9] elseif m.dls and ok[m.dls] then dest = m.dls end
    if dest then
      local payload = detach(seq, m)
      count('moved_out_total')
      outbox_put(seq, m, payload, dest, 'redriven', NOW, m.dls)
      moved = moved + 1
    end
  end
end
return cjson.encode({ moved = moved, more = moved >= max, outbox = redis.call('HLEN', OUT) })
