"""The bare ``/logs`` protocol (layer: protocol, beside the core).

Its constants (headers, media types) are in :mod:`.server` with a reusable,
dependency-free server (``LogBuffer``, ``LogServer``) that the simulated
cluster and the tests serve their logs with; the HTTP source reads the same
constants. See "The /logs protocol" in the README.
"""
