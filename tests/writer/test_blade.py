"""The shards a Blade writes, where it writes them, and its logging integration."""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import livecluster
import pytest
from livecluster import FIELDS, WRITER_SEPARATOR, Blade, Keys, LogBuffer, writer_host
from livecluster.logging import ShardFormatter, ShardHandler

from pytest_livecluster.methodology import schema
from pytest_livecluster.methodology.views import Views

from ._support import counts, replay


def _shards(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def blade(out: io.StringIO) -> Iterator[Blade]:
    with Blade("scraper-1", stream=out, module="scraper@1.4", boot=2) as blade:
        yield blade


def test_the_vocabulary_is_the_plugins() -> None:
    assert dataclasses.asdict(Keys()) == dataclasses.asdict(schema.Keys())
    assert FIELDS == schema.FIELDS
    # The plugin reads writer keys with the kit's own definitions, not a copy.
    from pytest_livecluster.methodology import facts, history, views

    assert views.writer_host is writer_host
    assert facts.WRITER_SEPARATOR is WRITER_SEPARATOR is history.WRITER_SEPARATOR
    for key, host in [("scraper-1", "scraper-1"), ("scraper-1/4242-a1b2c3", "scraper-1"), ("", "")]:
        assert writer_host(key) == host


def test_what_a_blade_says_goes_under_its_host(blade: Blade, out: io.StringIO) -> None:
    blade.hello()
    blade.log(status="ready")
    blade.log({"site": "a.example"}, items=3)
    blade.update_module("scraper@1.5")
    blade.answer("i-1", started=1.5)
    blade.intent("i-2", host="scraper-1", module="scraper@1.5")
    blade.write({"orchestrator": {"faults": {}}})
    assert _shards(out.getvalue()) == [
        {"scraper-1": {"msg": "Hello World", "boot": 2, "module": "scraper@1.4"}},
        {"scraper-1": {"status": "ready"}},
        {"scraper-1": {"site": "a.example", "items": 3}},
        {"scraper-1": {"module": "scraper@1.5", "msg": "module updated"}},
        {"intents": {"i-1": {"resolution": {"scraper-1": {"started": 1.5}}}}},
        {"intents": {"i-2": {"host": "scraper-1", "module": "scraper@1.5"}}},
        {"orchestrator": {"faults": {}}},
    ]
    assert blade.lines_written == 7
    assert blade.write_errors == 0


def test_counts_receipts_and_errors_go_under_the_writer_key(blade: Blade, out: io.StringIO) -> None:
    assert blade.writer == f"scraper-1/{blade.incarnation}"
    assert writer_host(blade.writer) == "scraper-1"
    blade.count("i-1", "site1.example", item_collected=2, item_sent=1, time_spent=0.25)
    blade.count("i-1", "site1.example", item_sent=1)
    blade.received("i-1", 17, sender="scraper-2")
    blade.received("i-1", 3)
    blade.error(TimeoutError("timed out"), intent="i-1", domain="site1.example")
    blade.error(TimeoutError("timed out again"))
    blade.error("ParseError", message="bad page")
    assert blade.counts() == {
        "i-1": {"site1.example": {"item_collected": 2, "item_sent": 2, "time_spent": 0.25}}
    }
    blade.flush()
    assert _shards(out.getvalue()) == [
        {
            "intents": {
                "i-1": {
                    "resolution": {
                        blade.writer: {
                            "item_scraped": {
                                "site1.example": {
                                    "item_collected": 2,
                                    "item_sent": 2,
                                    "time_spent": 0.25,
                                }
                            },
                            "received": 20,
                            "from": "scraper-2",
                        }
                    }
                }
            }
        },
        {
            blade.writer: {
                "errors": {
                    "TimeoutError": {
                        "count": 2,
                        "last": "timed out again",
                        "domain": "site1.example",
                        "intent": "i-1",
                    },
                    "ParseError": {"count": 1, "last": "bad page"},
                }
            }
        },
    ]
    blade.flush()  # nothing changed: nothing written
    assert len(out.getvalue().splitlines()) == 2

    state = replay(out.getvalue().splitlines())
    views = Views(state)
    assert counts(state).received == 20
    assert counts(state).received_by_spotter == {"scraper-1": 20}
    groups = {(g.host, g.type): g.count for g in views.errors()}
    assert groups == {("scraper-1", "TimeoutError"): 2, ("scraper-1", "ParseError"): 1}


def test_cumulative_lines_replay_to_the_same_total(blade: Blade, out: io.StringIO) -> None:
    for n in range(1, 6):
        blade.count("i-1", "a.example", item_sent=n)
        blade.flush()
    lines = out.getvalue().splitlines()
    assert len(lines) == 5
    state = replay([*lines, *reversed(lines), *lines])  # late and repeated lines change nothing
    assert counts(state).sent == 15


def test_many_groups_are_split_into_bounded_lines(blade: Blade, out: io.StringIO) -> None:
    for i in range(450):
        blade.count(f"i-{i % 3}", f"site{i}.example", item_sent=1)
    blade.flush()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3  # 200 (intent, domain) groups a line at most
    state = replay(lines)
    assert counts(state).sent == 450
    assert len(counts(state).by_domain) == 450


def test_custom_keys_rename_the_shards(out: io.StringIO) -> None:
    keys = Keys(hello_key="greeting", intents_key="tasks", scraped_key="scraped", errors_key="e")
    with Blade("scraper-1", stream=out, keys=keys) as blade:
        blade.hello()
        blade.count("t-1", "d", item_sent=1)
        blade.flush()
        blade.error("Boom")
    shards = _shards(out.getvalue())
    assert shards[0] == {"scraper-1": {"greeting": "Hello World"}}
    assert shards[1] == {
        "tasks": {"t-1": {"resolution": {blade.writer: {"scraped": {"d": {"item_sent": 1}}}}}}
    }
    assert shards[2] == {blade.writer: {"e": {"Boom": {"count": 1, "last": "Boom"}}}}


def test_bad_arguments_raise_and_add_nothing(blade: Blade) -> None:
    with pytest.raises(ValueError, match="without '/'"):
        Blade("scraper-1/2")
    with pytest.raises(ValueError, match="interval"):
        Blade("scraper-1", interval=0)
    with pytest.raises(ValueError, match=">= 0"):
        blade.count("i-1", "d", item_sent=1, item_collected=-1)
    with pytest.raises(TypeError):
        blade.count("i-1", "d", item_sent="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        blade.received("i-1", float("nan"))
    assert blade.counts() == {}


def test_a_closed_blade_still_counts_and_writes(out: io.StringIO) -> None:
    blade = Blade("scraper-1", stream=out)
    blade.count("i-1", "d", item_sent=1)
    blade.close()
    blade.close()
    blade.count("i-1", "d", item_sent=1)
    blade.close()
    assert counts(replay(out.getvalue().splitlines())).sent == 2


def test_lines_go_to_a_binary_stream_a_handler_and_a_buffer(tmp_path: Path) -> None:
    path = tmp_path / "binary.ndjson"
    handled = io.StringIO()
    handler = logging.StreamHandler(handled)
    buffer = LogBuffer()
    with open(path, "ab") as stream:
        for blade in (
            Blade("scraper-1", stream=stream),
            Blade("scraper-1", handler=handler),
            Blade("scraper-1", buffer=buffer),
        ):
            blade.hello()
            blade.log(name="café")  # non-ASCII stays itself
            blade.close()
    expected = ['{"scraper-1":{"msg":"Hello World"}}', '{"scraper-1":{"name":"café"}}']
    assert path.read_text(encoding="utf-8").splitlines() == expected
    assert handled.getvalue().splitlines() == expected
    assert [line.decode() for _, line in buffer.lines_after(0)] == expected


def test_a_buffer_and_a_stream_get_the_same_lines(out: io.StringIO) -> None:
    buffer = LogBuffer()
    with Blade("scraper-1", stream=out, buffer=buffer) as blade:
        blade.hello()
        blade.count("i-1", "d", item_sent=4)
    assert out.getvalue().splitlines() == [line.decode() for _, line in buffer.lines_after(0)]
    assert buffer.last_seq == 2


def test_values_that_are_not_json_are_written_as_text(blade: Blade, out: io.StringIO) -> None:
    blade.log(path=Path("/tmp/x"), tags=("a", "b"))
    assert _shards(out.getvalue()) == [{"scraper-1": {"path": "/tmp/x", "tags": ["a", "b"]}}]


def test_the_logging_handler_merges_record_shards_under_the_host(out: io.StringIO) -> None:
    blade = Blade("scraper-1", stream=out)
    logger = logging.getLogger("tests.writer.scraper")
    handler = ShardHandler(blade)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.info("scraping", extra={"shard": {"status": "scraping", "site": "a.example"}})
        logger.info("progress", extra={"shard": {"items": 3}})
        logger.debug("not at this level", extra={"shard": {"items": 99}})
        logger.warning("slow answer from %s", "a.example")
        try:
            raise TimeoutError("timed out")
        except TimeoutError:
            logger.exception("fetch failed", extra={"intent": "i-1", "domain": "a.example"})
    finally:
        logger.removeHandler(handler)
        blade.close()
    state = replay(out.getvalue().splitlines())
    host = state.get("scraper-1")
    assert host["status"] == "scraping"
    assert host["site"] == "a.example"
    assert host["items"] == 3
    assert host["log"]["level"] == "ERROR"
    assert host["log"]["msg"] == "fetch failed"
    assert host["log"]["logger"] == "tests.writer.scraper"
    assert state.get(blade.writer, "errors", "TimeoutError") == {
        "count": 1,
        "last": "timed out",
        "intent": "i-1",
        "domain": "a.example",
    }
    warning = next(s for s in _shards(out.getvalue()) if "log" in s.get("scraper-1", {}))
    assert warning["scraper-1"]["log"]["msg"] == "slow answer from a.example"


def test_the_formatter_writes_the_same_lines_through_any_handler(out: io.StringIO) -> None:
    handler = logging.StreamHandler(out)
    handler.setFormatter(ShardFormatter("scraper-1"))
    logger = logging.getLogger("tests.writer.formatter")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.info("ready", extra={"shard": {"status": "ready"}})
        try:
            raise KeyError("k")
        except KeyError:
            logger.exception("lookup failed")
    finally:
        logger.removeHandler(handler)
    first, second = _shards(out.getvalue())
    assert first == {"scraper-1": {"status": "ready"}}
    log = second["scraper-1"]["log"]
    assert log["msg"] == "lookup failed"
    assert log["exc"] == "KeyError: 'k'"
    assert replay(out.getvalue().splitlines()).get("scraper-1", "status") == "ready"


def test_every_public_name_is_exported_and_documented() -> None:
    for name in livecluster.__all__:
        value = getattr(livecluster, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), name
            for attr, member in vars(value).items() if inspect.isclass(value) else ():
                if inspect.isfunction(member) and not attr.startswith("_"):
                    assert inspect.getdoc(member), f"{name}.{attr}"
    assert "Hello World" in (livecluster.__doc__ or "")
