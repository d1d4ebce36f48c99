-- GCRA over several cells, all or none, on the server's clock (microseconds).
-- KEYS: the cells. ARGV, four per cell: limit, window (us), units, max wait (us).
-- Reply: {1, wait, remaining, reset, ...one triple per cell} when every cell took its
-- units, {0, index (from 0), wait, remaining} when the cell at index refused them.
redis.replicate_commands()
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local next_tats = {}
local reply = {1}
for i = 1, #KEYS do
  local at = (i - 1) * 4
  local limit = tonumber(ARGV[at + 1])
  local window = tonumber(ARGV[at + 2])
  local units = tonumber(ARGV[at + 3])
  local max_wait = tonumber(ARGV[at + 4])
  local interval = window / limit
  local tat = math.max(tonumber(redis.call('GET', KEYS[i]) or '0'), now)
  local next_tat = tat + units * interval
  local wait = math.max(next_tat - (now + window), 0)
  if wait > max_wait then
    local left = math.max(math.floor((now + window - tat) / interval), 0)
    return {0, i - 1, math.ceil(wait), left}
  end
  next_tats[i] = next_tat
  local left = math.max(math.floor((now + window - next_tat) / interval), 0)
  reply[#reply + 1] = math.ceil(wait)
  reply[#reply + 1] = left
  reply[#reply + 1] = math.ceil(next_tat - now)
end
for i = 1, #KEYS do
  -- A cell expires once it is full again: a full cell and no cell are the same.
  local ttl = math.ceil((next_tats[i] - now) / 1000) + 1
  redis.call('SET', KEYS[i], string.format('%.0f', math.ceil(next_tats[i])), 'PX', ttl)
end
return reply
