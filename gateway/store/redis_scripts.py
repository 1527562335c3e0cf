"""Lua scripts of ``RedisStore``: every multi-key or read-then-write change is one script.

A script runs atomically on the server, so no other client sees a half-written payment and
no compare-and-set can interleave. Every key a script touches shares one hash tag (one
Cluster slot); the only keys not passed in KEYS are built from a tagged prefix in ARGV
(the limit counters of a reservation being released), so they stay in that slot.
Return values are small arrays of strings/integers (Lua numbers would lose fractions).
"""

from __future__ import annotations

from schemas.payment import LEGAL_TRANSITIONS


def _legal_table() -> str:
    """LEGAL_TRANSITIONS as a Lua table literal, so schemas stay the one source of truth."""
    rows = []
    for old, allowed in sorted(LEGAL_TRANSITIONS.items()):
        inner = ", ".join(f"{new.value}=true" for new in sorted(allowed))
        rows.append(f"{old.value}={{{inner}}}")
    return "{" + ", ".join(rows) + "}"


# KEYS: pay, day, due, outbox, created. ARGV: id, version, status, json, work(0/1), due score,
# created score, events...
CREATE_PAYMENT = """
local stored = redis.call('HGET', KEYS[1], 'j')
if stored then
  if stored == ARGV[4] then return 1 end  -- a repeat of this very call (its reply was lost)
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3], 'j', ARGV[4])
redis.call('SADD', KEYS[2], ARGV[1])
if ARGV[5] == '1' then redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1]) end
redis.call('ZADD', KEYS[5], ARGV[7], ARGV[1])  -- the admin search index (created time)
for i = 8, #ARGV do redis.call('XADD', KEYS[4], '*', 'e', ARGV[i]) end
return 1
"""

# KEYS: claim, lease, pay, day, due, created (one slot: the claim's shard). ARGV: fingerprint, id,
# claim ttl, owner, lease ms, json, status, work(0/1), due score, created score. Answers the claim as CLAIM does, after
# taking the lease and storing the record when the claim is (or already was) this call's.
BEGIN_PAYMENT = """
local cur = redis.call('HMGET', KEYS[1], 'fp', 'rid', 'done', 'answer')
if not cur[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'rid', ARGV[2], 'done', '0')
  redis.call('EXPIRE', KEYS[1], ARGV[3])
elseif cur[1] ~= ARGV[1] then return {'CONFLICT', cur[2]}
elseif cur[3] == '1' then return {'DONE', cur[2], cur[4]}
elseif cur[2] ~= ARGV[2] then return {'IN_PROGRESS', cur[2]} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[4] then return {'IN_PROGRESS', ARGV[2]} end
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5])
if redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('HSET', KEYS[3], 'v', '0', 's', ARGV[7], 'j', ARGV[6])
  redis.call('SADD', KEYS[4], ARGV[2])
  if ARGV[8] == '1' then redis.call('ZADD', KEYS[5], ARGV[9], ARGV[2]) end
  redis.call('ZADD', KEYS[6], ARGV[10], ARGV[2])  -- the admin search index (created time)
end
return {'NEW', ARGV[2]}
"""

# KEYS: claim, lease, pay, due, created. ARGV: id, owner, day key prefix (same hash tag).
# Deletes a payment still at version 0 (it moved no money), its indexes, claim and lease; else nothing.
DISCARD_PAYMENT = """
local v = redis.call('HGET', KEYS[3], 'v')
if v then
  if tonumber(v) ~= 0 then return 0 end
  local day = cjson.decode(redis.call('HGET', KEYS[3], 'j'))['business_day']
  redis.call('DEL', KEYS[3])
  redis.call('SREM', ARGV[3] .. day, ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
end
local c = redis.call('HMGET', KEYS[1], 'rid', 'done')
if c[1] == ARGV[1] and c[2] == '0' then redis.call('DEL', KEYS[1]) end
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
"""

# KEYS: due index of one shard, or (one server only) of several. ARGV: now (epoch s), limit.
# One key: the due (id, score) pairs, earliest first, then the next due score after now ('' when none).
# Several keys: per key, the length of that reply, then the reply.
PAYMENTS_DUE = """
local function one(key)
  local ids = redis.call('ZRANGEBYSCORE', key, '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
  local nxt = redis.call('ZRANGEBYSCORE', key, '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  ids[#ids + 1] = nxt[2] or ''
  return ids
end
if #KEYS == 1 then return one(KEYS[1]) end
local out = {}
for _, key in ipairs(KEYS) do
  local r = one(key)
  out[#out + 1] = #r
  for _, v in ipairs(r) do out[#out + 1] = v end
end
return out
"""

# KEYS: pay, due, outbox, claim, lease, extra day keys... (claim and lease: any key of the slot when
# not finishing). ARGV: id, expected, status, json, work, due score, finish(0/1), answer, owner,
# n_events, events... Answers {0} stored, {1, version} stale (-1: missing), {2, old status} illegal.
UPDATE_PAYMENT = (
    "local LEGAL = " + _legal_table() + "\n"
    + """
local function finish()
  if ARGV[7] ~= '1' then return end
  if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('HSET', KEYS[4], 'done', '1', 'answer', ARGV[8]) end
  if redis.call('GET', KEYS[5]) == ARGV[9] then redis.call('DEL', KEYS[5]) end
end
local cur = redis.call('HMGET', KEYS[1], 'v', 's', 'j')
if not cur[1] then return {1, -1} end
if tonumber(cur[1]) ~= tonumber(ARGV[2]) then
  -- a repeat of this very call (same new record, timestamps included) whose reply was lost
  if tonumber(cur[1]) == tonumber(ARGV[2]) + 1 and cur[3] == ARGV[4] then
    finish()
    return {0}
  end
  return {1, tonumber(cur[1])}
end
local allowed = LEGAL[cur[2]]
if not allowed or not allowed[ARGV[3]] then return {2, cur[2]} end
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(ARGV[2]) + 1), 's', ARGV[3], 'j', ARGV[4])
if ARGV[5] == '1' then redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1]) else redis.call('ZREM', KEYS[2], ARGV[1]) end
for i = 6, #KEYS do redis.call('SADD', KEYS[i], ARGV[1]) end
for i = 11, 10 + tonumber(ARGV[10]) do redis.call('XADD', KEYS[3], '*', 'e', ARGV[i]) end
finish()
return {0}
"""
)

# KEYS: claim. ARGV: fingerprint, resource id, ttl_s.
CLAIM = """
local cur = redis.call('HMGET', KEYS[1], 'fp', 'rid', 'done', 'answer')
if not cur[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'rid', ARGV[2], 'done', '0')
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return {'NEW', ARGV[2]}
end
if cur[1] ~= ARGV[1] then return {'CONFLICT', cur[2]} end
if cur[2] == ARGV[2] and cur[3] == '0' then return {'NEW', ARGV[2]} end  -- the winner, repeating
if cur[3] == '1' then return {'DONE', cur[2], cur[4]} end
return {'IN_PROGRESS', cur[2]}
"""

# KEYS: claim. ARGV: answer JSON. Keeps the claim's TTL.
FINISH_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'done', '1', 'answer', ARGV[1]) end
return 0
"""

ABANDON_CLAIM = """
if redis.call('HGET', KEYS[1], 'done') == '0' then redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: key. ARGV: ttl_s (0: none), field, value, field, value ...
PUT_HASH = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
if tonumber(ARGV[1]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 0
"""

# KEYS: quote. ARGV: consumer, name, str(value), ... Field 'f:<name>' holds Python's str(value).
CONSUME_QUOTE = """
local d = redis.call('HGET', KEYS[1], 'd')
if not d then return {'MISSING'} end
for i = 2, #ARGV, 2 do
  local have = redis.call('HGET', KEYS[1], 'f:' .. ARGV[i]) or 'None'
  if have ~= ARGV[i + 1] then return {'MISMATCH'} end
end
local used = redis.call('HGET', KEYS[1], 'u')
if used and used ~= ARGV[1] then return {'USED'} end
redis.call('HSET', KEYS[1], 'u', ARGV[1])
return {'OK', d}
"""

RESTORE_QUOTE = """
if redis.call('HGET', KEYS[1], 'u') == ARGV[1] then redis.call('HDEL', KEYS[1], 'u') end
return 0
"""

# KEYS: reservation, counter... ARGV: reservation ttl, then (amount, cap, ttl, counter name) per item.
# Answers {ok(1/0), denied item index (1-based, 0: none), usage per item...}.
RESERVE_LIMITS = """
local n = #KEYS - 1
local before = {}
for i = 1, n do before[i] = tonumber(redis.call('GET', KEYS[i + 1]) or '0') end
if redis.call('EXISTS', KEYS[1]) == 1 then return {1, 0, unpack(before)} end
for i = 1, n do
  if before[i] + tonumber(ARGV[4 * i - 2]) > tonumber(ARGV[4 * i - 1]) then return {0, i, unpack(before)} end
end
local after = {}
for i = 1, n do
  after[i] = redis.call('INCRBY', KEYS[i + 1], ARGV[4 * i - 2])
  redis.call('EXPIRE', KEYS[i + 1], ARGV[4 * i])
  redis.call('HSET', KEYS[1], ARGV[4 * i + 1], ARGV[4 * i - 2])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return {1, 0, unpack(after)}
"""

# KEYS: reservation. ARGV: counter key prefix (same hash tag), 'all' | 'some', release id ('' none),
# then (counter, amount)... A release id is remembered in the reservation (field 'r:<id>'): its repeat
# gives nothing back again.
RELEASE_LIMITS = """
local held = redis.call('HGETALL', KEYS[1])
if #held == 0 then return 0 end
if ARGV[3] ~= '' then
  if redis.call('HSETNX', KEYS[1], 'r:' .. ARGV[3], '0') == 0 then return 0 end
end
local want = {}
for i = 4, #ARGV, 2 do want[ARGV[i]] = tonumber(ARGV[i + 1]) end
for i = 1, #held, 2 do
  local counter, amount = held[i], tonumber(held[i + 1])
  if string.sub(counter, 1, 2) == 'r:' then amount = 0 end
  local give = amount
  if ARGV[2] ~= 'all' then give = math.min(amount, math.max(0, want[counter] or 0)) end
  if give > 0 then
    redis.call('HSET', KEYS[1], counter, amount - give)
    local ck = ARGV[1] .. counter
    local total = redis.call('GET', ck)
    if total then redis.call('SET', ck, math.max(0, tonumber(total) - give), 'KEEPTTL') end
  end
end
return 0
"""

# KEYS: nonce. ARGV: this call's token, ttl_s. 1 the first time (or this call's own repeat), else 0.
REMEMBER_NONCE = """
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
if cur == ARGV[1] then return 1 end
return 0
"""

# KEYS: bucket. ARGV: rate per second, burst. Answers seconds to wait as a string (0 = allowed).
TAKE_TOKEN = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cur = redis.call('HMGET', KEYS[1], 'tk', 'at')
local tokens, at = tonumber(cur[1]) or burst, tonumber(cur[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tk', string.format('%.9f', tokens), 'at', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return string.format('%.9f', wait)
"""

# KEYS: lease. ARGV: owner, ttl_ms.
ACQUIRE_LEASE = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""

# Shared Lua helpers for the outbox scripts: stream id order and XINFO GROUPS as tables.
_STREAM_HELPERS = """
local function id_parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function id_gt(a, b)
  local am, as = id_parts(a)
  local bm, bs = id_parts(b)
  return am > bm or (am == bm and as > bs)
end
local function groups(key)
  local out = {}
  for _, flat in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local g = {}
    for i = 1, #flat, 2 do g[flat[i]] = flat[i + 1] end
    out[#out + 1] = g
  end
  return out
end
"""

# The outbox scripts take several shard streams at once (one slot group: every shard on a single
# server, one shard per call on a Cluster), so a batch costs one round trip, not one per shard.

# KEYS: streams. ARGV: group, then per key: n, ids... Acknowledges, then deletes each entry that
# every group has been handed and acknowledged (the stream keeps only what someone still owes).
ACK_EVENTS = (
    _STREAM_HELPERS
    + """
local pos = 2
for k = 1, #KEYS do
  local key, n = KEYS[k], tonumber(ARGV[pos])
  local ids = {unpack(ARGV, pos + 1, pos + n)}
  pos = pos + n + 1
  if n > 0 and redis.call('EXISTS', key) == 1 then
    redis.call('XACK', key, ARGV[1], unpack(ids))
    local gs, gone = groups(key), {}
    for _, id in ipairs(ids) do
      local done = true
      for _, g in ipairs(gs) do  -- our group just acknowledged it: only the others need XPENDING
        if id_gt(id, g['last-delivered-id'])
            or (g['name'] ~= ARGV[1] and #redis.call('XPENDING', key, g['name'], id, id, 1) > 0) then
          done = false
          break
        end
      end
      if done then gone[#gone + 1] = id end
    end
    if #gone > 0 then redis.call('XDEL', key, unpack(gone)) end
  end
end
return 0
"""
)

# KEYS: streams. ARGV: group. Entries the group has not acknowledged (pending + not yet read).
BACKLOG = (
    _STREAM_HELPERS
    + """
local total = 0
for k = 1, #KEYS do
  local key, found = KEYS[k], false
  if redis.call('EXISTS', key) == 1 then
    for _, g in ipairs(groups(key)) do
      if g['name'] == ARGV[1] then
        local lag = g['lag']
        if not lag then lag = #redis.call('XRANGE', key, '(' .. g['last-delivered-id'], '+') end
        total = total + g['pending'] + lag
        found = true
      end
    end
    if not found then total = total + redis.call('XLEN', key) end
  end
end
return total
"""
)

# KEYS: streams. ARGV: group, consumer, min idle ms, count. Answers key index, id, event,
# deliveries, ... (at most count entries over all keys).
RECLAIM_EVENTS = """
local out, want, got = {}, tonumber(ARGV[4]), 0
for k = 1, #KEYS do
  local key, start = KEYS[k], '0-0'
  if got >= want then break end
  repeat  -- an idle check costs one XAUTOCLAIM per stream (an error: no stream or no group yet)
    local r = redis.pcall('XAUTOCLAIM', key, ARGV[1], ARGV[2], ARGV[3], start, 'COUNT', want - got)
    if r['err'] then break end
    start = r[1]
    for _, e in ipairs(r[2]) do
      if e and e[2] then
        local p = redis.call('XPENDING', key, ARGV[1], e[1], e[1], 1)
        out[#out + 1] = k
        out[#out + 1] = e[1]
        out[#out + 1] = e[2][2]
        out[#out + 1] = p[1][4]
        got = got + 1
      end
    end
  until start == '0-0' or got >= want
end
return out
"""

SCRIPTS: dict[str, str] = {
    "CREATE_PAYMENT": CREATE_PAYMENT,
    "BEGIN_PAYMENT": BEGIN_PAYMENT,
    "DISCARD_PAYMENT": DISCARD_PAYMENT,
    "PAYMENTS_DUE": PAYMENTS_DUE,
    "UPDATE_PAYMENT": UPDATE_PAYMENT,
    "CLAIM": CLAIM,
    "FINISH_CLAIM": FINISH_CLAIM,
    "ABANDON_CLAIM": ABANDON_CLAIM,
    "PUT_HASH": PUT_HASH,
    "CONSUME_QUOTE": CONSUME_QUOTE,
    "RESTORE_QUOTE": RESTORE_QUOTE,
    "RESERVE_LIMITS": RESERVE_LIMITS,
    "RELEASE_LIMITS": RELEASE_LIMITS,
    "TAKE_TOKEN": TAKE_TOKEN,
    "REMEMBER_NONCE": REMEMBER_NONCE,
    "ACQUIRE_LEASE": ACQUIRE_LEASE,
    "RELEASE_LEASE": RELEASE_LEASE,
    "ACK_EVENTS": ACK_EVENTS,
    "BACKLOG": BACKLOG,
    "RECLAIM_EVENTS": RECLAIM_EVENTS,
}

# -- settlement windows and reconciliation (all keys share the hash tag {stl}) -------------------
# KEYS: window, last, batch... ARGV: window JSON, window id, batch JSON... (same order as KEYS[3..]).
PUT_WINDOW = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
for i = 3, #KEYS do redis.call('SET', KEYS[i], ARGV[i]) end
return 1
"""

# KEYS: exceptions hash. ARGV: id, JSON, id, JSON ... Answers how many were new.
ADD_RECON = """
local new = 0
for i = 1, #ARGV, 2 do new = new + redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end
return new
"""

# KEYS: exceptions hash. ARGV: id, note, at. Answers the stored JSON (first resolution kept), or nil.
RESOLVE_RECON = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local doc = cjson.decode(raw)
if doc['resolved_at'] == nil or doc['resolved_at'] == cjson.null then
  doc['resolved_at'] = ARGV[3]
  doc['note'] = ARGV[2]
  raw = cjson.encode(doc)
  redis.call('HSET', KEYS[1], ARGV[1], raw)
end
return raw
"""

SCRIPTS.update({"PUT_WINDOW": PUT_WINDOW, "ADD_RECON": ADD_RECON, "RESOLVE_RECON": RESOLVE_RECON})
