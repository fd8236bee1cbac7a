-- wrk script: count the replies that carry a SAMLResponse form, per thread, then in total.
-- With arguments (-- FILE THREADS), each thread sends its own share of the request
-- paths in FILE, one per line, so that every AuthnRequest is new: fedmock answers
-- each request ID once.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  saml_replies = 0
  other_replies = 0
  paths = nil
  if args[1] then
    paths, position = {}, 0
    local line_number, share = 0, tonumber(args[2])
    for line in io.lines(args[1]) do
      if line_number % share == id then
        table.insert(paths, line)
      end
      line_number = line_number + 1
    end
  end
end

function request()
  if paths == nil then
    return wrk.request()
  end
  position = position % #paths + 1
  return wrk.format("GET", paths[position])
end

function response(status, headers, body)
  if status == 200 and string.find(body, 'name="SAMLResponse"', 1, true) then
    saml_replies = saml_replies + 1
  else
    other_replies = other_replies + 1
  end
end

function done(summary, latency, requests)
  local saml, other = 0, 0
  for _, thread in ipairs(threads) do
    saml = saml + thread:get("saml_replies")
    other = other + thread:get("other_replies")
  end
  io.write(string.format("saml_replies=%d other_replies=%d\n", saml, other))
end
