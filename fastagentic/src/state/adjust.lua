-- Charges (positive units) or refunds (negative units) cells without a check.
-- KEYS: the cells. ARGV, three per cell: limit, window (us), units.
-- A charge is capped one window beyond an exhausted cell; a refund never goes below a
-- full cell. Reply: the number of cells moved.
redis.replicate_commands()
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local moved = 0
for i = 1, #KEYS do
  local at = (i - 1) * 3
  local limit = tonumber(ARGV[at + 1])
  local window = tonumber(ARGV[at + 2])
  local units = tonumber(ARGV[at + 3])
  local interval = window / limit
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  local next_tat = tat
  if units >= 0 then
    next_tat = math.min(math.max(tat, now) + units * interval, now + 2 * window)
  elseif tat > now then
    next_tat = math.max(tat + units * interval, now)
  end
  if next_tat > now then
    local ttl = math.ceil((next_tat - now) / 1000) + 1
    redis.call('SET', KEYS[i], string.format('%.0f', math.ceil(next_tat)), 'PX', ttl)
    moved = moved + 1
  elseif tat > 0 then
    redis.call('DEL', KEYS[i])
    moved = moved + 1
  end
end
return moved
