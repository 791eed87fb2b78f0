"""A tiny program using the installed kit: counts from threads, a forked child and
asyncio tasks, serves /logs, and prints its shards on stdout.

Run by ``test_install.py`` with an interpreter that has the kit and nothing of
the project (a fresh virtual environment, or Python 3.9). Standard library and
``livecluster`` only; prints ``kit: <file>`` on stderr so the test sees which
copy ran.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import urllib.request

import livecluster
from livecluster import Blade, LogBuffer, LogServer
from livecluster.apps import logs_asgi_app, logs_wsgi_app
from livecluster.logging import ShardFormatter, ShardHandler


def main() -> None:
    sys.stderr.write(f"kit: {livecluster.__file__}\n")
    buffer = LogBuffer()
    blade = Blade("scraper-1", stream=sys.stdout, buffer=buffer, module="scraper@1.4")
    blade.hello()

    def work() -> None:
        for _ in range(1000):
            blade.count("i-1", "site1.example", item_sent=1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    async def task() -> None:
        for _ in range(10):
            blade.count("i-1", "site1.example", item_sent=1)
            await asyncio.sleep(0)

    async def tasks() -> None:
        await asyncio.gather(*(task() for _ in range(10)))

    asyncio.run(tasks())
    blade.flush()

    if hasattr(os, "fork"):
        pid = os.fork()
        if pid == 0:  # a new writer: counts from zero under its own key
            blade.count("i-1", "site1.example", item_sent=5)
            blade.flush()
            os._exit(0)
        os.waitpid(pid, 0)

    assert ShardHandler(blade).blade is blade
    assert ShardFormatter(blade).host == "scraper-1"
    assert logs_wsgi_app(buffer).buffer is logs_asgi_app(buffer).buffer is buffer
    with LogServer(buffer) as server:
        blade.log(status="served")
        with urllib.request.urlopen(server.url + "?after=0", timeout=30) as response:
            first = response.readline()
    assert json.loads(first) == {"scraper-1": {"msg": "Hello World", "module": "scraper@1.4"}}
    blade.close()


if __name__ == "__main__":
    main()
