-- The status and history of message ARGV 8, live or finished.
local e = open_queue()
if e then return e end
advance()
local id = ARGV[8]
local seq = redis.call('HGET', IDS, id)
if seq then
  local m = load(tonumber(seq))
  local s = 'PENDING'
  if m.s == 'd' then s = 'DELAYED' elseif m.s == 'f' then s = 'PROCESSING' end
  return cjson.encode({ s = s, h = m.h })
end
local raw = redis.call('HGET', ARCH, id)
if not raw then return cjson.encode({ none = true }) end
local r = cjson.decode(raw)
return cjson.encode({ s = r.s, h = r.h })
