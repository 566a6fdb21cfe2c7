"""The command queue: device actions that wait, in the inventory, until a device answers.

Lock, wipe and policy push (and any kind registered in `kinds.py`) are rows that go
queued → sent → done | failed | expired | cancelled | superseded. `service.py` writes
them (supersede, wipe-cancels-earlier, expiry, approval, the wipe-burst hold);
`run.py` delivers what is due through the device driver, at least once and idempotent
by command id.
"""
