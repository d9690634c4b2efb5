-- Ends the hold of token. ARGV 3 holder, 4 token. The name's last token must be this one;
-- a hold that already ended (expired, or released before) answers 'ended' and changes
-- nothing, so a retried release succeeds. Waiters are woken either way.
local e = load_lock()
if not e then return fail('NOT_HELD') end
local was_live = live(e)
if e.last ~= tonumber(ARGV[4]) or (was_live and e.holder ~= ARGV[3]) then
  return fail('TOKEN_STALE', { current = current(e) })
end
redis.call('HDEL', L, 'holder', 'acq', 'exp')
wake()
if was_live then return cjson.encode({ r = 'released' }) end
return cjson.encode({ r = 'ended' })
