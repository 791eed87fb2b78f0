"""The ``livecluster`` command and source specs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from pytest_livecluster import SpecError
from pytest_livecluster.cli import main
from pytest_livecluster.protocol.server import LogBuffer, LogServer
from pytest_livecluster.sources import parse_specs, split_specs
from pytest_livecluster.sources.file import FileSource

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "example_suite" / "recordings" / "staging-sample.ndjson"


def test_split_specs_keeps_commas_inside_urls() -> None:
    assert split_specs("file:a.ndjson, http://h:1/logs?x=1,2,docker:label=a=b,sim") == [
        "file:a.ndjson",
        "http://h:1/logs?x=1,2",
        "docker:label=a=b",
        "sim",
    ]


def test_unknown_spec_names_the_value_and_the_valid_kinds() -> None:
    with pytest.raises(SpecError, match=r"unknown source spec 'ftp://x'; valid kinds: .*file:PATH"):
        parse_specs("ftp://x")


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ("", "no source given"),
        ("file:", "write file:PATH"),
        ("file:a,file:a", "given twice"),
    ],
)
def test_bad_specs(specs: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_specs(specs)


def test_file_specs_build_file_sources() -> None:
    [source] = parse_specs(["file:run.ndjson"])
    assert isinstance(source, FileSource)
    assert source.id == "file:run.ndjson"
    assert source.finite


def test_state_prints_sorted_json_and_totals(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "state",
            f"file:{SAMPLE}",
            "--counter",
            "intents.*.resolution.*.item_scraped.*",
            "--totals",
            "intents.*.resolution.*.item_scraped.*.item_sent",
            "--totals",
            "intents.*.resolution.*.received",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    doc = orjson.loads(out)
    assert list(doc) == ["state", "totals"]
    assert list(doc["state"]) == sorted(doc["state"])
    sent = doc["totals"]["intents.*.resolution.*.item_scraped.*.item_sent"]
    received = doc["totals"]["intents.*.resolution.*.received"]
    # Each spotter reports the cumulative items it received for its intent.
    by_intent = {
        iid: sum(
            dom["item_sent"]
            for host in intent["resolution"].values()
            for dom in host.get("item_scraped", {}).values()
        )
        for iid, intent in doc["state"]["intents"].items()
        if "resolution" in intent
    }
    assert sent == sum(by_intent.values()) > 0
    assert received == sent
    assert "66 lines from 1 source(s): 63 accepted, 3 rejected (invalid_json: 3)" in err


def test_state_reads_stdin_and_keeps_big_integers() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_livecluster.cli", "state", "file:-"],
        input=b'{"n": 123456789012345678901234567890}\n{"m": [1, 2]}\n',
        capture_output=True,
        check=True,
    )
    assert done.stdout == b'{"m":[1,2],"n":123456789012345678901234567890}\n'


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["state", "nope"], "unknown source spec 'nope'"),
        (["state", "file:x", "--counter", "a..b"], "bad pattern 'a..b'"),
        (["state", "file:x", "--ttl", "intents.*=-1"], "must be a positive number of seconds"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_ttl_option_needs_pattern_equals_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["state", "file:x", "--ttl", "intents.*"]) == 2
    assert "--ttl: expected 'PATTERN = SECONDS', got 'intents.*'" in capsys.readouterr().err


def test_state_waits_for_a_live_source_to_go_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    buffer = LogBuffer()
    with LogServer(buffer, heartbeat=0.2).start() as server:
        buffer.append('{"scraper-1": {"msg": "Hello World"}}')
        buffer.append('{"scraper-1": {"count": 1}}')
        code = main(["state", server.url, "--until-idle", "0.5", "--timeout", "20"])
    out, err = capsys.readouterr()
    assert code == 0
    assert orjson.loads(out) == {"scraper-1": {"msg": "Hello World", "count": 1}}
    assert "2 lines from 1 source(s): 2 accepted, 0 rejected" in err


def test_tail_prints_each_shard_as_path_assignments() -> None:
    buffer = LogBuffer()
    with LogServer(buffer, heartbeat=0.2).start() as server:
        buffer.append('{"intents": {"i-1": {"item_scraped": {"site1.example": {"item_sent": 3}}}}}')
        buffer.append("Traceback (most recent call last):")
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest_livecluster.cli", "tail", server.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            first = process.stdout.readline().decode()
            second = process.stdout.readline().decode()
        finally:
            process.terminate()
            process.communicate(timeout=10)
    source = server.url
    assert first.split(" ", 1)[1] == (
        f'{source} stdout intents.i-1.item_scraped."site1.example".item_sent = 3\n'
    )
    assert second.split(" ", 1)[1] == (
        f"{source} stdout [rejected: invalid_json] Traceback (most recent call last):\n"
    )


def test_report_renders_a_recording_offline_as_the_live_run_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page, report = tmp_path / "page.html", tmp_path / "report.json"
    assert main(["report", f"file:{SAMPLE}", "--html", str(page), "--json", str(report)]) == 0
    data = orjson.loads(report.read_bytes())
    sections = {s["title"]: s["data"] for s in data["sections"]}
    history = sections["throughput"]["history"]
    # Every item the state counts is in the series, at the writers' own times.
    assert sum(history["series"]["sent"]["total"]) == sections["counts"]["total"]["item_sent"]
    assert sum(history["series"]["received"]["total"]) == sections["counts"]["received"]
    assert sum(history["series"]["lines"]["total"]) == data["state"]["accepted"]
    assert history["start"] < 1_800_000_000  # the recording's time, not the replay's
    assert sections["intents"]["timeline"]
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "<svg" in html
    assert "wrote the HTML report" in capsys.readouterr().err
    # The same recording, named by its path alone, gives the same series.
    again = tmp_path / "again.json"
    assert main(["report", str(SAMPLE), "--json", str(again)]) == 0
    again_sections = {s["title"]: s["data"] for s in orjson.loads(again.read_bytes())["sections"]}
    assert again_sections["throughput"]["history"] == history


def test_report_never_writes_over_the_recording_it_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = tmp_path / "run.ndjson"
    recording.write_bytes(SAMPLE.read_bytes())
    assert main(["report", f"file:{recording}", "--html", str(recording)]) == 2
    assert "is a recording this report reads" in capsys.readouterr().err
    assert main(["report", str(recording), "--json", str(recording)]) == 2
    assert "is a recording this report reads" in capsys.readouterr().err
    assert recording.read_bytes() == SAMPLE.read_bytes()
    assert main(["report", f"file:{recording}"]) == 2
    assert "give --html OUT, --json OUT or both" in capsys.readouterr().err
