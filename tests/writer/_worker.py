"""What the test processes run: importable by spawned children, runnable with ``-m``.

Standard library and ``livecluster`` only, so a child never loads the plugin.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time

from livecluster import Blade

INTENT = "i-1"
DOMAIN = "site1.example"


def count_in_threads(blade: Blade, threads: int, n: int) -> None:
    """``threads`` threads, each counting ``n`` items (collected and sent)."""

    def work() -> None:
        for _ in range(n):
            blade.count(INTENT, DOMAIN, item_collected=1, item_sent=1)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def spawned(path: str, threads: int, n: int) -> None:
    """A spawned process: its own blade on its own file; the exit flushes (``atexit``)."""
    blade = Blade("scraper-1", stream=open(path, "a", encoding="utf-8"))  # noqa: SIM115
    count_in_threads(blade, threads, n)


def forked(blade: Blade, threads: int, n: int) -> None:
    """A forked process counting with the blade it inherited; ``multiprocessing``'s exit flushes."""
    count_in_threads(blade, threads, n)


def in_tasks(blade: Blade, tasks: int, n: int) -> None:
    """``tasks`` asyncio tasks, each counting ``n`` items with an await between counts."""

    async def task() -> None:
        for _ in range(n):
            blade.count(INTENT, DOMAIN, item_sent=1)
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(task() for _ in range(tasks)))

    asyncio.run(main())


def crash(path: str, limit: int) -> None:
    """Count until killed (``limit`` 0) or ``limit`` items, then exit normally.

    Prints the writer key first, so the test knows this incarnation.
    """
    blade = Blade("scraper-1", stream=open(path, "a", encoding="utf-8"), interval=0.02)  # noqa: SIM115
    print(blade.writer, flush=True)
    done = 0
    while not limit or done < limit:
        blade.count(INTENT, DOMAIN, item_collected=1, item_sent=1)
        done += 1
        if done % 200 == 0:
            time.sleep(0.001)  # a steady pace, not a spin


def closed_stdout(mode: str) -> None:
    """Lose stdout (``fd``: close descriptor 1; ``object``: close sys.stdout; ``pipe``:
    the reader goes away), then log and count; report the blade's write errors on stderr."""
    if mode == "fd":
        os.close(1)
    elif mode == "object":
        sys.stdout.close()
    elif mode == "pipe":
        sys.stdin.readline()  # the test closed its end of our stdout first
    blade = Blade("scraper-1")
    blade.hello()
    for _ in range(1000):
        blade.count(INTENT, DOMAIN, item_sent=1)
    blade.flush()
    blade.log(status="done")
    sys.stderr.write(f"write_errors={blade.write_errors}\n")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "crash":
        crash(args[0], int(args[1]))
    elif command == "closed-stdout":
        closed_stdout(args[0])
    else:
        raise SystemExit(f"unknown command {command!r}")
