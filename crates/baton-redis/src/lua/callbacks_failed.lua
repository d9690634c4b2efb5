-- Up to ARGV 8 status records whose last callback failed, oldest finish first.
local e = open_queue()
if e then return e end
local ids = redis.call('ZRANGE', CBFAIL, 0, tonumber(ARGV[8]) - 1)
local out = {}
for _, id in ipairs(ids) do
  local raw = redis.call('HGET', ARCH, id)
  if raw then
    local r = cjson.decode(raw)
    out[#out + 1] = { id = id, s = r.s, h = r.h }
  end
end
return cjson.encode({ r = out })
