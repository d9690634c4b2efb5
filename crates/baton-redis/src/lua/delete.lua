-- Deletes the queue and every message; waiting receives wake and find it gone.
if redis.call('EXISTS', H) == 0 then return fail('NOT_FOUND') end
redis.call('UNLINK', unpack(KEYS))
wake()
return cjson.encode({ deleted = true })
