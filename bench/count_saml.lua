-- wrk script: count the replies that carry a SAMLResponse form, per thread, then in total.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  saml_replies = 0
  other_replies = 0
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
