-- Up to ARGV 9 live messages after seq ARGV 8, in seq order, changing nothing.
local e = open_queue()
if e then return e end
advance()
local seqs = redis.call('ZRANGEBYSCORE', SEQS, '(' .. ARGV[8], '+inf', 'LIMIT', 0, tonumber(ARGV[9]))
local out = {}
for _, s in ipairs(seqs) do
  local m = load(tonumber(s))
  out[#out + 1] = { seq = tonumber(s), id = m.id, s = m.s, at = m.at, rc = m.rc, sent = m.sent,
    g = m.g, d = m.d, dls = m.dls, p = redis.call('HGET', MSG, s) }
end
return cjson.encode({ m = out })
