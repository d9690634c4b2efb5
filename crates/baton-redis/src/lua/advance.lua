-- Applies what became due without traffic (the engine's tick).
local e = open_queue()
if e then return e end
advance()
return cjson.encode({ outbox = redis.call('HLEN', OUT), next = next_visible_at() })
