# Issue 17 item 12: the slots a client sees, the backend's free slot included.
run slots "${P[@]}" --list-slots
run tokens "${T[@]}" --list-tokens
py slots <<'PY'
from pycompat import *
lib = load()
out('slots:', len(lib.getSlotList()))
out('slots with a token:', len(lib.getSlotList(tokenPresent=True)))
for slot in lib.getSlotList():
    info = lib.getSlotInfo(slot)
    out('slot flags:', sorted(info.flags2text()))
PY
