"""`make bench`: the connector against a plain sequential client, on the sandbox at scale.

`python -m bench` runs the cases (cases.py), `bench.baseline` is the plain client; see
README.md. Nothing here is imported by the baseline's process but baseline.py itself.
"""
