-- Deletes messages up to seq ARGV 8 ('' = every message live now), STEP_MAX per call.
local e = open_queue()
if e then return e end
advance()
local upto = C.next_seq - 1
if ARGV[8] ~= '' then upto = tonumber(ARGV[8]) end
local chunk = redis.call('ZRANGEBYSCORE', SEQS, '-inf', upto, 'LIMIT', 0, STEP_MAX)
for _, s in ipairs(chunk) do
  local seq = tonumber(s)
  finish(seq, load(seq), 'purged', 'PURGED', 'purged_total')
end
return cjson.encode({ purged = #chunk, more = #chunk == STEP_MAX, upto = upto })
