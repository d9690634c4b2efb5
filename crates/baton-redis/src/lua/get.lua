-- The queue's attributes, metadata and statistics as of now.
local e = open_queue()
if e then return e end
advance()
return cjson.encode(view())
