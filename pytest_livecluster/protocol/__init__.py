"""The bare ``/logs`` protocol (layer: protocol, beside the core).

Its constants (headers, media types) and a reusable, dependency-free server
(``LogBuffer``, ``LogServer``) live in the writer kit, :mod:`livecluster.logs`;
:mod:`.server` re-exports them for the simulated cluster, the tests and the
HTTP source. See "The /logs protocol" in the README.
"""
