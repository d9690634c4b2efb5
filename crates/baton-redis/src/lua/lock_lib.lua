-- Shared by every lock script: the lock's key, the engine's time, and how a hold is read.
-- The Lua twin of baton_core::lock's table entry, one hash per name in the name's own slot:
--   last    the name's last token; kept after release and expiry, so tokens only grow
--   holder, acq, exp   the hold (absent after a release); live while NOW < exp
-- Expiry is only NOW passing exp: no Redis TTL, no timer, and NOW is the engine's clock
-- passed in (never Redis TIME), so an injected clock drives expiry exactly.
--
-- KEYS: 1 the lock's hash {<namespace>:l:<name>}:h
-- ARGV: 1 now (ms, the engine's clock), 2 the lock's name; the operation's own from 3.
local L = KEYS[1]
local WAKE = string.sub(L, 1, -3) .. ':wake'
local NOW = tonumber(ARGV[1])
local NAME = ARGV[2]

local function fail(code, extra)
  local e = extra or {}
  e.err = code
  return cjson.encode(e)
end

local function num(x) return string.format('%d', x) end

-- The name's state: nil when it was never granted, else its last token and hold (if any).
local function load_lock()
  local f = redis.call('HMGET', L, 'last', 'holder', 'acq', 'exp')
  if not f[1] then return nil end
  local e = { last = tonumber(f[1]) }
  if f[2] then e.holder, e.acq, e.exp = f[2], tonumber(f[3]), tonumber(f[4]) end
  return e
end

local function live(e) return e ~= nil and e.holder ~= nil and NOW < e.exp end

-- The live hold's token, or nil: what a refusal reports as current.
local function current(e)
  if live(e) then return e.last end
  return nil
end

local function view(e)
  return { holder = e.holder, token = e.last, acq = e.acq, exp = e.exp }
end

-- Waiting acquires on any node subscribe to this sharded channel, in the lock's slot.
local function wake() redis.call('SPUBLISH', WAKE, '1') end
