"""Any answer: a property-based (Hypothesis) check of every vendor against scripted APIs.

Each example builds a small world (a sandbox vendor API, a few records of which may be odd),
a script of what the server does with each request it receives in turn (answer properly, or
with an error status, a wrong body, a reset, a silence, a trickle, a redirect, a mangled
next link), serves it on 127.0.0.1 and runs the real CLI (`launch.py`: the installed
command with backoff waits skipped and a one-second deadline) against it. `oracle.py`
holds the one invariant every outcome must meet.

- `behaviours.py`: what the server may do with one request, and the Hypothesis strategies.
- `world.py`: the vendors' small datasets, odd records, secrets and expected keys.
- `server.py`: the scripted HTTP server and its log of what each request met.
- `oracle.py`: the invariant, and a readable report when it does not hold.
- `launch.py`: runs `source-customers` with short deadlines and no backoff waits.
"""
