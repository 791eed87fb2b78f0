"""The engine (layer: core, the bottom): everything a live test's verdict rests on.

=================== ===========================================================
:mod:`.state`       ``State`` and ``merge_patch``: RFC 7386 in place, counters,
                    TTL, the journal (over the engine in ``_state``)
:mod:`.paths`       path patterns (over the matcher in ``_paths``)
:mod:`.fastpath`    the parse of a line into a shard (over ``_fastpath``)
:mod:`._native`     which engine runs: compiled (mypyc) when it was built from
                    the sources on disk, else the sources, with a warning
:mod:`.ingest`      envelopes, limits and the reasons a line is rejected
:mod:`.jsonutil`    JSON in and out, one way
:mod:`.recording`   recordings: writing and reading them
:mod:`.source`      the interface every source implements
:mod:`.collector`   runs sources into one state
:mod:`.waiting`     ``eventually`` and ``consistently``
:mod:`.cluster`     ``Cluster``: what a live test sees, whatever the methodology
=================== ===========================================================

The core imports no pytest, no docker-py and no httpx, and nothing above it;
only the owners (exceptions, retries, escaping) from beside it.
"""
