-- The live hold, if any (also the fencing check of a fenced write's first step).
local e = load_lock()
if not live(e) then return cjson.encode({ none = true }) end
return cjson.encode(view(e))
