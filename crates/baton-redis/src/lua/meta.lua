-- Changes the queue's tags and attributes by the patch in ARGV 8 (cjson: expect, set_tags,
-- set_attrs, remove_tags, put_tags, remove_attrs, put_attrs), checking their limits, and its
-- push subscription (push: value, check, expect — JSON text compared as it is stored).
local e = open_queue()
if e then return e end
advance()
local p = cjson.decode(ARGV[8])
local tags = cjson.decode(redis.call('HGET', H, 'tags'))
local attrs = cjson.decode(redis.call('HGET', H, 'attrs'))
for _, x in ipairs(p.expect) do
  local want = x[2]
  if want == cjson.null then want = nil end
  if attrs[x[1]] ~= want then return fail('META_CONFLICT', { attribute = x[1] }) end
end
if p.set_tags ~= cjson.null then tags = p.set_tags end
if p.set_attrs ~= cjson.null then attrs = p.set_attrs end
for _, k in ipairs(p.remove_tags) do tags[k] = nil end
for k, v in pairs(p.put_tags) do tags[k] = v end
for _, k in ipairs(p.remove_attrs) do attrs[k] = nil end
for k, v in pairs(p.put_attrs) do attrs[k] = v end
local function too_big(map, n_max)
  local n = 0
  for k, v in pairs(map) do
    n = n + 1
    if #k + #v > 20480 then return true end
  end
  return n > n_max
end
if too_big(tags, 50) then return fail('META_LIMIT', { field = 'tags' }) end
if too_big(attrs, 32) then return fail('META_LIMIT', { field = 'attributes' }) end
if p.push ~= nil and p.push ~= cjson.null then
  local current = redis.call('HGET', H, 'push')
  if current == false then current = nil end
  local want = p.push.expect
  if want == cjson.null then want = nil end
  if p.push.check and current ~= want then
    return fail('META_CONFLICT', { attribute = 'push' })
  end
  if p.push.value == cjson.null or p.push.value == nil then
    redis.call('HDEL', H, 'push')
  else
    redis.call('HSET', H, 'push', p.push.value)
  end
end
redis.call('HSET', H, 'tags', cjson.encode(tags), 'attrs', cjson.encode(attrs), 'modified', num(NOW))
return cjson.encode(view())
