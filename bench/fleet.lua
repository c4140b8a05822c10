-- wrk script for the fleet arms: every request carries the identity of an agent drawn at
-- random from a file of prepared header values (one per line), as a proxy in front of a
-- fleet would send it.
--
--   wrk -s bench/fleet.lua URL -- VALUES_FILE HEADER_NAME [RUN]
--
-- With RUN (default 1), each drawn agent makes RUN requests in a row before the next draw,
-- as an agent does that sends a few calls per check-in; wrk hands consecutive requests of
-- a thread to different connections, so a run's requests are also in flight together.
--
-- The request is built once up to the identity header, so each request costs the client
-- one random draw (or a counter step) and one string concatenation, the same in every arm
-- it is used for.

local thread_count = 0

function setup(thread)
    thread_count = thread_count + 1
    thread:set("thread_number", thread_count)
end

local values
local head
local run_length
local left = 0
local current

function init(args)
    local path, header = args[1], args[2]
    run_length = tonumber(args[3] or "1")
    if not path or not header or not run_length or run_length < 1 then
        error("usage: wrk -s fleet.lua URL -- VALUES_FILE HEADER_NAME [RUN]")
    end
    values = {}
    for line in io.lines(path) do
        if line ~= "" then
            values[#values + 1] = line
        end
    end
    if #values == 0 then
        error("no header values in " .. path)
    end
    -- wrk.format ends the head with an empty line; the identity header goes before it.
    local formatted = wrk.format(nil, nil, wrk.headers)
    head = formatted:sub(1, -3) .. header .. ": "
    math.randomseed(os.time() * 7919 + (thread_number or 0))
end

function request()
    if left == 0 then
        current = head .. values[math.random(#values)] .. "\r\n\r\n"
        left = run_length
    end
    left = left - 1
    return current
end
