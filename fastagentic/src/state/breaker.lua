-- One circuit breaker's fleet-wide state, on the server's clock (microseconds).
-- KEYS: the state hash, the failure window (a sorted set), the probe leases (a sorted set).
-- ARGV[1], the operation, then its arguments:
--   fail  window threshold force member  a counted failure while closed; opens at
--                                         `threshold` failures in `window`, or at once
--                                         when `force` is 1 (the replica tripped itself)
--   probe reset max_probes lease member   asks for a half-open probe: moves open to
--                                         half-open once `reset` has passed; at most
--                                         `max_probes` unexpired leases at a time
--   done  generation member outcome needed  a probe's end (success, failure, neutral);
--                                         `needed` successes close the breaker
--   read                                  changes nothing
-- Reply: {state (0 closed, 1 open, 2 half-open), time since it opened, generation,
--         probe granted (0/1), retry after}.
redis.replicate_commands()
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state_key, fails_key, probes_key = KEYS[1], KEYS[2], KEYS[3]
local saved = redis.call('HMGET', state_key, 'state', 'opened_at', 'generation', 'successes')
local state = tonumber(saved[1]) or 0
local opened_at = tonumber(saved[2]) or 0
local generation = tonumber(saved[3]) or 0
local successes = tonumber(saved[4]) or 0
local granted, retry_after = 0, 0

local function move(to)
  state = to
  generation = generation + 1
  successes = 0
  if to == 1 then opened_at = now end
  redis.call('DEL', fails_key, probes_key)
end

local op = ARGV[1]
if op == 'fail' then
  local window, threshold = tonumber(ARGV[2]), tonumber(ARGV[3])
  if state == 0 then
    redis.call('ZADD', fails_key, now, ARGV[5])
    redis.call('ZREMRANGEBYSCORE', fails_key, '-inf', now - window)
    redis.call('PEXPIRE', fails_key, math.ceil(window / 1000) + 1)
    if ARGV[4] == '1' or redis.call('ZCARD', fails_key) >= threshold then move(1) end
  end
elseif op == 'probe' then
  local reset, max_probes, lease = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  if state == 1 then
    if now < opened_at + reset then
      retry_after = opened_at + reset - now
    else
      move(2)
    end
  end
  if state == 2 then
    redis.call('ZREMRANGEBYSCORE', probes_key, '-inf', now)
    if redis.call('ZCARD', probes_key) < max_probes then
      redis.call('ZADD', probes_key, now + lease, ARGV[5])
      redis.call('PEXPIRE', probes_key, math.ceil(lease / 1000) + 1)
      granted = 1
    else
      retry_after = reset
    end
  end
elseif op == 'done' then
  local outcome = ARGV[4]
  if state == 2 and generation == tonumber(ARGV[2]) then
    redis.call('ZREM', probes_key, ARGV[3])
    if outcome == 'failure' then
      move(1)
    elseif outcome == 'success' then
      successes = successes + 1
      if successes >= tonumber(ARGV[5]) then move(0) end
    end
  end
end
if op ~= 'read' then
  redis.call('HSET', state_key, 'state', state, 'opened_at', opened_at,
    'generation', generation, 'successes', successes)
  -- A breaker nobody has touched for a day is forgotten (closed is the default).
  redis.call('PEXPIRE', state_key, 86400000)
end
local since = 0
if state ~= 0 then since = now - opened_at end
return {state, since, generation, granted, retry_after}
