-- wrk script of `make bench`'s peer run: with arguments (-- FILE THREADS), each thread takes
-- its share of the Cookie header values in FILE (one signed-in session a line) and sends
-- the next one with each request, so that requests in flight at once carry different
-- sessions; it counts the replies that carry a SAMLResponse form, per thread, then in total.
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
  cookies, position = {}, 0
  local all, share = {}, tonumber(args[2])
  for line in io.lines(args[1]) do
    table.insert(all, line)
  end
  for index, line in ipairs(all) do
    if (index - 1) % share == id then
      table.insert(cookies, line)
    end
  end
  if #cookies == 0 then
    cookies = all -- fewer sessions than threads: every thread uses them all
  end
end

function request()
  position = position % #cookies + 1
  return wrk.format(nil, nil, { Cookie = cookies[position] })
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
