-- Shared by every queue script: the queue's keys, its clock, and the state machine's steps
-- (the Lua twin of baton_core::queue). Every script is this library followed by one operation.
--
-- KEYS (all in the queue's slot, hash-tagged {<namespace>:q:<queue>}):
--  1 h: scalars (config fields for the scripts, epoch, config version, counters, totals)
--  2 msg: seq -> payload (id, body, attributes; opaque, encoded by the engine)
--  3 st: seq -> state (cjson: id, group, dedup, notify, state, times, lease, history)
--  4 ids: message id -> seq          5 vis: visible seqs (standard queues), score seq
--  6 delayed: seq by visible-at      7 leases: seq by lease deadline
--  8 bysent: padded seq by send time 9 gpend: FIFO pending, member group\0seq, score 0
-- 10 gflight: group -> messages in flight   11 avail: available groups by head seq
-- 12 arch: id -> finished status (cjson)     13 archq: id by finish time
-- 14 dedup: dedup id -> "id seq"             15 dedupx: dedup id by expiry
-- 16 out: outbox token -> move (cjson)       17 movedin: tokens already accepted, by time
-- 18 seqs: every live seq, score seq         19 cbfail: ids whose callback failed, by time
-- 20 fence: lock name -> highest fencing token that wrote here (fence.lua)
-- 21 fired: schedule name -> "tick id seq" of its last tick sent here (fired.lua)
-- ARGV: 1 now ('' = Redis TIME), 2 epoch ('' = any), 3 config version ('' = any),
--       4 status retention ms, 5 status records max, 6 in-flight max, 7 queue name;
--       the operation's own arguments from 8.
local H, MSG, ST, IDS, VIS, DELAYED, LEASES, BYSENT, GPEND, GFLIGHT, AVAIL, ARCH, ARCHQ,
  DEDUP, DEDUPX, OUT, MOVEDIN, SEQS, CBFAIL = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
  KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14],
  KEYS[15], KEYS[16], KEYS[17], KEYS[18], KEYS[19]
local FENCE, FIRED = KEYS[20], KEYS[21]
-- Set by fired.lua: called by send.lua with its answers once the batch is in, so the
-- schedule's marker rises in the same script as the send and never without it.
local AFTER_SEND = nil
local WAKE = string.sub(H, 1, -3) .. ':wake'
local NOW
if ARGV[1] == '' then
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  NOW = tonumber(ARGV[1])
end
local STATUS_RET, STATUS_MAX, INFLIGHT_MAX = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local QNAME = ARGV[7]
local HISTORY_MAX = 64
local DEDUP_WINDOW_MS = 300000
local VISIBILITY_MAX_MS = 43200000
-- Work one advance does per index, so a script stays short; what is left waits for the next.
local STEP_MAX = 1000
-- Accepted move tokens are remembered this long (a hand-over older than this is not expected).
local MOVED_TOKEN_MS = 7 * 24 * 3600 * 1000

local C = {}
local FIFO = false
local DLQ = nil

local function fail(code, extra)
  local e = extra or {}
  e.err = code
  return cjson.encode(e)
end

-- Loads the queue's scalars; returns an error reply when it is gone or not the one expected.
local function open_queue()
  local f = redis.call('HMGET', H, 'epoch', 'cver', 'fifo', 'ret', 'maxd', 'dlq', 'mrc',
    'rbase', 'rmax', 'next_seq', 'next_lease')
  if not f[1] then return fail('NOT_FOUND') end
  if (ARGV[2] ~= '' and ARGV[2] ~= f[1]) or (ARGV[3] ~= '' and ARGV[3] ~= f[2]) then
    return fail('STALE_QUEUE')
  end
  C.epoch, C.cver = f[1], f[2]
  FIFO = f[3] == '1'
  C.ret = tonumber(f[4])
  C.maxd = tonumber(f[5])
  if f[6] and f[6] ~= '' then DLQ = f[6] end
  C.mrc = tonumber(f[7])
  C.rbase, C.rmax = tonumber(f[8]), tonumber(f[9])
  C.next_seq, C.next_lease = tonumber(f[10]), tonumber(f[11])
  return nil
end

local function save_counters()
  redis.call('HSET', H, 'next_seq', string.format('%d', C.next_seq),
    'next_lease', string.format('%d', C.next_lease))
end

local function count(field, n) redis.call('HINCRBY', H, field, n or 1) end
local function pad(seq) return string.format('%020d', seq) end
local function num(x) return string.format('%d', x) end

local function load(seq)
  local raw = redis.call('HGET', ST, num(seq))
  if not raw then return nil end
  return cjson.decode(raw)
end

local function save(seq, m) redis.call('HSET', ST, num(seq), cjson.encode(m)) end

local function push_history(h, kind, rc, detail)
  if #h >= HISTORY_MAX then table.remove(h, 2) end
  h[#h + 1] = { k = kind, at = NOW, rc = rc, d = detail }
end

local function gmember(g, seq) return g .. '\0' .. pad(seq) end

-- The first pending seq of group g, or nil.
local function group_head(g)
  local head = redis.call('ZRANGE', GPEND, '[' .. g .. '\0', '(' .. g .. '\1', 'BYLEX', 'LIMIT', 0, 1)
  if not head[1] then return nil end
  return tonumber(string.sub(head[1], #g + 2))
end

-- Re-derives whether group g is available (nothing in flight, its head visible).
local function refresh(g)
  local inflight = tonumber(redis.call('HGET', GFLIGHT, g) or '0')
  local want = nil
  if inflight == 0 then
    redis.call('HDEL', GFLIGHT, g)
    local seq = group_head(g)
    if seq then
      local m = load(seq)
      if m and m.s == 'v' then want = seq end
    end
  end
  if want then redis.call('ZADD', AVAIL, want, g) else redis.call('ZREM', AVAIL, g) end
end

local function make_visible_indexed(seq, m)
  m.s = 'v'
  m.at = 0
  count('nvis', 1)
  if not FIFO then redis.call('ZADD', VIS, seq, num(seq)) end
end

-- Puts new message seq (state m, payload already in MSG) into every index.
local function insert(seq, m, visible_at)
  if NOW < visible_at then
    m.s = 'd'
    m.at = visible_at
    redis.call('ZADD', DELAYED, visible_at, num(seq))
  else
    make_visible_indexed(seq, m)
  end
  redis.call('ZADD', BYSENT, m.sent, pad(seq))
  redis.call('ZADD', SEQS, seq, num(seq))
  redis.call('HSET', IDS, m.id, num(seq))
  if FIFO then redis.call('ZADD', GPEND, 0, gmember(m.g, seq)) end
  save(seq, m)
  if FIFO then refresh(m.g) end
end

-- Removes message seq (state m, as loaded) from every index; returns its payload.
local function detach(seq, m)
  local s = num(seq)
  if m.s == 'd' then
    redis.call('ZREM', DELAYED, s)
  elseif m.s == 'v' then
    count('nvis', -1)
    if not FIFO then redis.call('ZREM', VIS, s) end
  else
    redis.call('ZREM', LEASES, s)
  end
  if FIFO then
    if m.s == 'f' then
      redis.call('HINCRBY', GFLIGHT, m.g, -1)
    else
      redis.call('ZREM', GPEND, gmember(m.g, seq))
    end
  end
  redis.call('HDEL', ST, s)
  redis.call('ZREM', BYSENT, pad(seq))
  redis.call('ZREM', SEQS, s)
  if redis.call('HGET', IDS, m.id) == s then redis.call('HDEL', IDS, m.id) end
  if FIFO then refresh(m.g) end
  local payload = redis.call('HGET', MSG, s)
  redis.call('HDEL', MSG, s)
  return payload
end

local function unarchive(id)
  redis.call('HDEL', ARCH, id)
  redis.call('ZREM', ARCHQ, id)
  redis.call('ZREM', CBFAIL, id)
end

local function archive(id, status, h)
  if STATUS_MAX == 0 then return end
  redis.call('HSET', ARCH, id, cjson.encode({ s = status, h = h }))
  redis.call('ZADD', ARCHQ, NOW, id)
  redis.call('ZREM', CBFAIL, id)
  local over = redis.call('ZCARD', ARCHQ) - STATUS_MAX
  if over > 0 then
    local old = redis.call('ZPOPMIN', ARCHQ, over)
    for i = 1, #old, 2 do
      redis.call('HDEL', ARCH, old[i])
      redis.call('ZREM', CBFAIL, old[i])
    end
  end
end

-- Writes a move to the outbox, in this script and so in this slot: the engine hands it over.
local function outbox_put(seq, m, payload, dest, kind, sent, dls)
  local token = QNAME .. ':' .. C.epoch .. ':' .. num(seq)
  local move = { dest = dest, kind = kind, src = QNAME, id = m.id, g = m.g, d = m.d, n = m.n,
    h = m.h, sent = sent, dls = dls, p = payload }
  redis.call('HSET', OUT, token, cjson.encode(move))
end

local function dead_letter(seq, m)
  local payload = detach(seq, m)
  push_history(m.h, 'dead_lettered', m.rc, 'moved to ' .. DLQ)
  count('dead_lettered_total')
  archive(m.id, 'DEAD_LETTERED', m.h)
  outbox_put(seq, m, payload, DLQ, 'dead_lettered', m.sent, QNAME)
end

-- Ends the lease on in-flight message seq: visible after delay, or dead-lettered.
local function end_lease(seq, m, delay, why)
  push_history(m.h, 'nacked', m.rc, why)
  if DLQ and m.rc >= C.mrc then
    dead_letter(seq, m)
    return
  end
  redis.call('ZREM', LEASES, num(seq))
  m.l = nil
  if NOW < NOW + delay then
    m.s = 'd'
    m.at = NOW + delay
    redis.call('ZADD', DELAYED, m.at, num(seq))
  else
    make_visible_indexed(seq, m)
  end
  save(seq, m)
  if FIFO then
    redis.call('HINCRBY', GFLIGHT, m.g, -1)
    redis.call('ZADD', GPEND, 0, gmember(m.g, seq))
    refresh(m.g)
  end
end

local function finish(seq, m, kind, status, total)
  detach(seq, m)
  push_history(m.h, kind, m.rc, nil)
  count(total)
  archive(m.id, status, m.h)
end

-- Applies what became due by NOW: retention, delays ending, leases ending, dedup ids and
-- status records ageing out. At most STEP_MAX of each per call.
local function advance()
  local old = redis.call('ZRANGEBYSCORE', BYSENT, '-inf', NOW - C.ret, 'LIMIT', 0, STEP_MAX)
  for _, p in ipairs(old) do
    local seq = tonumber(p)
    local m = load(seq)
    if m then finish(seq, m, 'expired', 'EXPIRED', 'expired_total') end
  end
  local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', NOW, 'LIMIT', 0, STEP_MAX)
  for _, s in ipairs(due) do
    local seq = tonumber(s)
    redis.call('ZREM', DELAYED, s)
    local m = load(seq)
    make_visible_indexed(seq, m)
    save(seq, m)
    if FIFO then refresh(m.g) end
  end
  local ended = redis.call('ZRANGEBYSCORE', LEASES, '-inf', NOW, 'LIMIT', 0, STEP_MAX)
  for _, s in ipairs(ended) do
    local seq = tonumber(s)
    end_lease(seq, load(seq), 0, 'visibility timeout expired')
  end
  local dedups = redis.call('ZRANGEBYSCORE', DEDUPX, '-inf', NOW, 'LIMIT', 0, STEP_MAX)
  for _, d in ipairs(dedups) do
    redis.call('HDEL', DEDUP, d)
    redis.call('ZREM', DEDUPX, d)
  end
  local records = redis.call('ZRANGEBYSCORE', ARCHQ, '-inf', NOW - STATUS_RET, 'LIMIT', 0, STEP_MAX)
  for _, id in ipairs(records) do unarchive(id) end
end

-- The earliest moment a message becomes visible by itself, or -1.
local function next_visible_at()
  local d = redis.call('ZRANGE', DELAYED, 0, 0, 'WITHSCORES')
  local l = redis.call('ZRANGE', LEASES, 0, 0, 'WITHSCORES')
  local at = -1
  if d[2] then at = tonumber(d[2]) end
  if l[2] and (at < 0 or tonumber(l[2]) < at) then at = tonumber(l[2]) end
  return at
end

-- The seq a receipt names if this incarnation issued it, or nil.
local function issued(seq, lease)
  if 0 < seq and seq < C.next_seq and 0 < lease and lease < C.next_lease then return seq end
  return nil
end

-- The state of the message a receipt leases now, or nil and 'I' (invalid) / 'S' (stale).
local function current(seq, lease)
  if not issued(seq, lease) then return nil, 'I' end
  local m = load(seq)
  if m and m.s == 'f' and m.l == lease then return m, nil end
  return nil, 'S'
end

local function retry_delay(rc, seq)
  if not C.rbase then return 0 end
  local exp = math.min(C.rmax, C.rbase * math.pow(2, math.min(rc - 1, 62)))
  local half = math.floor(exp / 2)
  local spread = exp - half
  if spread == 0 then return half end
  return half + math.fmod(seq * 7919 + rc * 104729, spread + 1)
end

local function wake() redis.call('SPUBLISH', WAKE, '1') end

local function stats()
  local f = redis.call('HMGET', H, 'nvis', 'sent_total', 'duplicates_total', 'received_total',
    'acked_total', 'nacked_total', 'dead_lettered_total', 'expired_total', 'purged_total',
    'moved_in_total', 'moved_out_total')
  local oldest = redis.call('ZRANGE', BYSENT, 0, 0, 'WITHSCORES')
  local age = 0
  if oldest[2] then age = math.max(0, NOW - tonumber(oldest[2])) end
  local out = { visible = tonumber(f[1] or '0'), in_flight = redis.call('ZCARD', LEASES),
    delayed = redis.call('ZCARD', DELAYED), oldest_age_ms = age }
  local names = { 'sent_total', 'duplicates_total', 'received_total', 'acked_total',
    'nacked_total', 'dead_lettered_total', 'expired_total', 'purged_total', 'moved_in_total',
    'moved_out_total' }
  for i, name in ipairs(names) do out[name] = tonumber(f[i + 1] or '0') end
  return out
end

local function view()
  local f = redis.call('HMGET', H, 'cfg', 'epoch', 'cver', 'created', 'modified', 'tags', 'attrs',
    'push')
  return { cfg = f[1], epoch = f[2], cver = f[3], created = tonumber(f[4]),
    modified = tonumber(f[5]), tags = f[6], attrs = f[7], push = f[8], stats = stats(),
    outbox = redis.call('HLEN', OUT), now = NOW }
end
-- ---- the operation ----
