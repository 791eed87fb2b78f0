"""Bad lines: every one is counted by reason, sampled, and changes nothing else."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_livecluster import ConfigError, Envelope, Limits, State, merge_patch
from pytest_livecluster.core.fastpath import LONG_RUN, plain_enough, quick_shard
from pytest_livecluster.core.ingest import BOM, DEFAULT_LIMITS, REASONS, Rejection, parse_shard

SEED = b'{"scraper-1": {"msg": "Hello World"}, "n": 1}'
ENV = Envelope("docker:scraper-7", "stderr", origin_ns=123, source_seq=9)


def _nested(depth: int) -> bytes:
    """An object nested ``depth`` levels deep (``{}`` alone is depth 1)."""
    return b'{"k":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def _seeded(**kwargs: Any) -> State:
    state = State(**kwargs)
    assert state.ingest(SEED, Envelope("docker:seed"))
    return state


def _assert_rejected(state: State, line: bytes | str, reason: str) -> None:
    """Ingest ``line`` and check it was rejected for ``reason`` and changed nothing else."""
    before = state.stats()
    snapshot = state.snapshot()
    journal = state.journal()
    rejected = state.rejected()
    seq = state.seq

    assert state.ingest(line, ENV) is False

    after = state.stats()
    expected_reasons = dict(before.rejected)
    expected_reasons[reason] = expected_reasons.get(reason, 0) + 1
    assert after.rejected == expected_reasons
    assert after.lines == before.lines + 1
    assert state.seq == seq + 1
    assert after.version == before.version
    assert state.version == before.version
    assert after.accepted == before.accepted
    assert after.bom_stripped == before.bom_stripped
    assert after.journal == before.journal
    assert state.snapshot() == snapshot
    assert state.journal() == journal

    samples = state.rejected()
    assert samples[:-1] == rejected
    sample = samples[-1]
    assert sample.reason == reason
    assert sample.envelope == ENV
    assert sample.seq == seq + 1
    raw = line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")
    expected_text = raw.decode("utf-8", "replace")[:512]
    assert sample.text == expected_text


def _assert_parse_rejects(raw: bytes, reason: str, limits: Limits = DEFAULT_LIMITS) -> None:
    result = parse_shard(raw, limits)
    assert isinstance(result, Rejection), result
    assert result.reason == reason, result


# --------------------------------------------------------------------------
# invalid JSON
# --------------------------------------------------------------------------

INVALID_JSON = [
    b'{"a": 1',
    b"{a: 1}",
    b"{'a': 1}",
    b'{"a": 1,}',
    b'{"a": 1} trailing',
    b'{"a": 1}{"b": 2}',
    b"Traceback (most recent call last):",
    b"INFO starting scraper",
    b"{",
    b"}",
    b'{"a": tru}',
    b'{"a": "unterminated}',
    b'{"a": "\x01control"}',
    b'{"a": 01}',
    # UTF-16 without a BOM is valid UTF-8 (ASCII and NULs) but not JSON
    '{"a": 1}'.encode("utf-16-le"),
]


@pytest.mark.parametrize("raw", INVALID_JSON)
def test_invalid_json_is_rejected(raw: bytes) -> None:
    _assert_parse_rejects(raw, "invalid_json")
    _assert_rejected(_seeded(), raw, "invalid_json")


# --------------------------------------------------------------------------
# invalid UTF-8
# --------------------------------------------------------------------------

INVALID_UTF8 = [
    b'{"a": "\xff\xfe"}',
    b"\xff",
    b'{"a": "\xc3"}',  # truncated two-byte sequence
    b'{"a": "\xc0\xaf"}',  # overlong encoding
    b'{"a": "\xed\xa0\x80"}',  # an encoded surrogate
    b'{"\xfe": 1}',
    b'\xff\xfe{\x00"\x00a\x00"\x00:\x001\x00}\x00',  # UTF-16 with its BOM
]


@pytest.mark.parametrize("raw", INVALID_UTF8)
def test_invalid_utf8_is_rejected(raw: bytes) -> None:
    _assert_parse_rejects(raw, "invalid_utf8")
    _assert_rejected(_seeded(), raw, "invalid_utf8")


def test_invalid_utf8_sample_uses_replacement_characters() -> None:
    state = _seeded()
    assert not state.ingest(b'{"bad": "\xff\xfe"}', ENV)
    assert state.rejected()[-1].text == '{"bad": "\ufffd\ufffd"}'


# --------------------------------------------------------------------------
# not an object
# --------------------------------------------------------------------------

NOT_OBJECTS = [
    b"[]",
    b'[{"a": 1}]',
    b'"a string"',
    b"42",
    b"-1.5",
    b"null",
    b"true",
    b"false",
    b"  [1, 2]  ",
]


@pytest.mark.parametrize("raw", NOT_OBJECTS)
def test_non_object_json_is_rejected(raw: bytes) -> None:
    _assert_parse_rejects(raw, "not_an_object")
    _assert_rejected(_seeded(), raw, "not_an_object")


def test_not_an_object_detail_names_the_type() -> None:
    result = parse_shard(b"[1]")
    assert isinstance(result, Rejection)
    assert "list" in result.detail


# --------------------------------------------------------------------------
# depth
# --------------------------------------------------------------------------


def test_default_depth_limit_is_64() -> None:
    assert DEFAULT_LIMITS.max_depth == 64
    assert isinstance(parse_shard(_nested(64)), dict)
    _assert_parse_rejects(_nested(65), "too_deep")
    state = _seeded()
    assert state.ingest(_nested(64))
    _assert_rejected(state, _nested(65), "too_deep")


def test_depth_counts_arrays() -> None:
    limits = Limits(max_depth=5)
    assert parse_shard(b'{"a": [[[[1]]]]}', limits) == {"a": [[[[1]]]]}
    _assert_parse_rejects(b'{"a": [[[[[1]]]]]}', "too_deep", limits)
    _assert_parse_rejects(b'{"a": [{"b": [{"c": []}]}]}', "too_deep", limits)


def test_custom_depth_limit() -> None:
    limits = Limits(max_depth=5)
    assert parse_shard(_nested(5), limits) == json.loads(_nested(5))
    _assert_parse_rejects(_nested(6), "too_deep", limits)
    state = _seeded(limits=limits)
    assert state.ingest(_nested(5))
    assert state.get("k", "k", "k", "k") == {}
    _assert_rejected(state, _nested(6), "too_deep")
    _assert_rejected(state, b'{"a": 1, "b": {"c": [[[[2]]]]}}', "too_deep")


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    limits = Limits(max_depth=2)
    raw = b'{"a": "[[[[{{{{{{{{", "b": {"c": "]]]}}}}"}}'
    assert parse_shard(raw, limits) == {"a": "[[[[{{{{{{{{", "b": {"c": "]]]}}}}"}}


@pytest.mark.parametrize("depth", [65, 1023, 1024, 1025, 5000, 200_000])
def test_very_deep_lines_are_rejected_without_crashing(depth: int) -> None:
    raw = b'{"a":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
    _assert_parse_rejects(raw, "too_deep")
    _assert_rejected(_seeded(), raw, "too_deep")


def test_very_deep_non_object_is_rejected_without_crashing() -> None:
    result = parse_shard(b"[" * 100_000 + b"]" * 100_000)
    assert isinstance(result, Rejection)
    assert result.reason in ("too_deep", "not_an_object")


# --------------------------------------------------------------------------
# size
# --------------------------------------------------------------------------


def test_line_over_the_size_limit_is_rejected() -> None:
    limits = Limits(max_line_bytes=100)
    prefix = b'{"a": "'
    exactly = prefix + b"x" * (100 - len(prefix) - 2) + b'"}'
    over = prefix + b"x" * (101 - len(prefix) - 2) + b'"}'
    assert len(exactly) == 100
    assert len(over) == 101
    assert parse_shard(exactly, limits) == json.loads(exactly)
    result = parse_shard(over, limits)
    assert isinstance(result, Rejection)
    assert result.reason == "too_large"
    assert "101" in result.detail
    assert "100" in result.detail

    state = _seeded(limits=limits)
    assert state.ingest(exactly)
    _assert_rejected(state, over, "too_large")
    # the size is checked before anything else
    _assert_rejected(state, b"\xff" * 101, "too_large")


def test_size_limit_counts_bytes_not_characters() -> None:
    limits = Limits(max_line_bytes=100)
    line = '{"a": "' + "é" * 46 + '"}'  # 55 characters, 101 bytes
    assert len(line.encode()) == 101
    _assert_rejected(_seeded(limits=limits), line, "too_large")


# --------------------------------------------------------------------------
# integers beyond 64 bits
# --------------------------------------------------------------------------

BIG_INTS = [
    2**70,
    -(2**70),
    2**64,  # 18446744073709551616
    2**64 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,  # 19 digits, one below the smallest int64
    -(2**64),
    -9_999_999_999_999_999_999,  # 19 digits, below the smallest int64
    10**30,
    -(10**100),
]


def _plain_enough_reference(line: bytes, max_depth: int) -> bool:
    """The fast path's rule, written the obvious way."""
    opens = line.count(b"{") + line.count(b"[")
    longest = max((len(run) for run in re.findall(rb"[0-9]+", line)), default=0)
    return opens <= max_depth and longest < LONG_RUN


@settings(max_examples=400)
@given(
    st.lists(st.sampled_from([b"0", b"9", b"5", b"{", b"[", b"}", b'"', b"a", b"/", b":"])).map(
        b"".join
    ),
    st.integers(min_value=0, max_value=8),
)
def test_the_fast_paths_scan_counts_brackets_and_digit_runs_exactly(
    line: bytes, max_depth: int
) -> None:
    assert plain_enough(line, max_depth) == _plain_enough_reference(line, max_depth)


@pytest.mark.parametrize("digits", [17, 18, 19, 20])
def test_a_digit_run_of_nineteen_takes_the_exact_path(digits: int) -> None:
    line = b'{"a": 1' + b"2" * (digits - 1) + b"}"
    assert plain_enough(line, 64) is (digits < LONG_RUN)
    assert quick_shard(line, 1 << 20, 64) == (
        {"a": int("1" + "2" * (digits - 1))} if digits < LONG_RUN else None
    )


@pytest.mark.parametrize("value", BIG_INTS)
def test_big_integers_keep_their_exact_value(value: int) -> None:
    raw = f'{{"a": {value}}}'.encode()
    shard = parse_shard(raw)
    assert shard == {"a": value}
    assert isinstance(shard, dict)
    assert type(shard["a"]) is int

    state = _seeded()
    assert state.ingest(raw)
    got = state.get("a")
    assert type(got) is int
    assert got == value


def test_big_integers_inside_nested_objects_and_lists() -> None:
    value = {
        "a": {"b": [1, 2**70, {"c": -(2**70)}], "d": 18446744073709551616},
        "e": [[-(2**63) - 1]],
        "f": 1.5,
        "g": "12345678901234567890",
        "h": 7,
    }
    raw = json.dumps(value).encode()
    shard = parse_shard(raw)
    assert shard == value
    assert isinstance(shard, dict)
    assert type(shard["a"]["b"][1]) is int
    assert type(shard["a"]["b"][2]["c"]) is int
    assert type(shard["a"]["d"]) is int
    assert type(shard["e"][0][0]) is int
    assert type(shard["f"]) is float
    assert type(shard["g"]) is str

    state = State()
    assert state.ingest(raw)
    assert state.snapshot() == value
    assert state.journal()[-1].shard == value


# --------------------------------------------------------------------------
# NaN and infinities
# --------------------------------------------------------------------------

NAN_OR_INFINITY = [
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"a": -Infinity}',
    b'{"a": 1e400}',
    b'{"a": -1e400}',
    b'{"a": 1E400}',
    b'{"a": 2e308}',
    b'{"a": {"b": [1, NaN]}}',
    b'{"a": 123456789012345678901234, "b": NaN}',
    b'{"a": 123456789012345678901234, "b": 1e400}',
    b'{"a": 123456789012345678901234, "b": -Infinity}',
]


@pytest.mark.parametrize("raw", NAN_OR_INFINITY)
def test_nan_and_infinity_are_rejected(raw: bytes) -> None:
    _assert_parse_rejects(raw, "nan_or_infinity")
    _assert_rejected(_seeded(), raw, "nan_or_infinity")


def test_nan_or_infinity_inside_strings_is_fine() -> None:
    raw = b'{"a": "NaN", "b": "Infinity", "c": "1e400"}'
    assert parse_shard(raw) == {"a": "NaN", "b": "Infinity", "c": "1e400"}


def test_largest_double_and_underflow_are_accepted() -> None:
    assert parse_shard(b'{"a": 1.7976931348623157e308}') == {"a": 1.7976931348623157e308}
    assert parse_shard(b'{"a": 1e-400}') == {"a": 0.0}


# --------------------------------------------------------------------------
# byte order mark
# --------------------------------------------------------------------------


def test_bom_is_stripped_and_counted() -> None:
    raw = BOM + b'{"a": {"b": 1}}'
    assert parse_shard(raw) == {"a": {"b": 1}}
    state = _seeded()
    version = state.version
    assert state.ingest(raw, ENV) is True
    assert state.get("a") == {"b": 1}
    assert state.get("scraper-1") == {"msg": "Hello World"}
    stats = state.stats()
    assert stats.bom_stripped == 1
    assert stats.rejected == {}
    assert stats.accepted == 2
    assert state.version == version + 1
    assert state.journal()[-1].envelope == ENV
    assert state.journal()[-1].shard == {"a": {"b": 1}}
    assert state.ingest(BOM + b'{"c": 2}')
    assert state.stats().bom_stripped == 2


def test_bom_before_a_non_object_is_rejected_and_not_counted_as_stripped() -> None:
    state = _seeded()
    _assert_rejected(state, BOM + b"[1]", "not_an_object")
    _assert_rejected(state, BOM, "empty")
    assert state.stats().bom_stripped == 0


def test_bom_with_big_integer() -> None:
    state = State()
    assert state.ingest(BOM + b'{"a": 1180591620717411303424}')
    assert state.get("a") == 2**70
    assert state.stats().bom_stripped == 1


# --------------------------------------------------------------------------
# empty lines
# --------------------------------------------------------------------------

EMPTY: list[bytes | str] = [b"", b" ", b"\t\t", b"\n", b"\r\n", b"   \t \r\n", "", "   "]


@pytest.mark.parametrize("raw", EMPTY)
def test_empty_and_whitespace_lines_are_rejected_as_empty(raw: bytes | str) -> None:
    if isinstance(raw, bytes):
        _assert_parse_rejects(raw, "empty")
    _assert_rejected(_seeded(), raw, "empty")


# --------------------------------------------------------------------------
# str input
# --------------------------------------------------------------------------


def test_str_input_is_accepted() -> None:
    state = State()
    assert state.ingest('{"msg": "héllo 日本 😀"}')
    assert state.get("msg") == "héllo 日本 😀"


def _with(codepoint: int, template: str = '{"a": "%s"}') -> str:
    return template % chr(codepoint)


@pytest.mark.parametrize(
    "line",
    [
        # the surrogates that "surrogateescape" maps back to single bytes ...
        _with(0xDC80),
        _with(0xDCFF),
        # ... and the ones it cannot
        _with(0xD800),
        _with(0xDFFF),
        _with(0xD83D),  # the first half of an emoji's surrogate pair
        _with(0xD800, '{"%s": 1}'),
        _with(0xD800, "%s"),
    ],
    ids=["dc80", "dcff", "d800", "dfff", "d83d", "in-key", "alone"],
)
def test_str_with_lone_surrogates_is_rejected_not_raised(line: str) -> None:
    state = _seeded()
    before = state.snapshot()
    try:
        accepted = state.ingest(line, ENV)
    except Exception as exc:  # the contract: ingest never raises for bad input
        pytest.fail(f"State.ingest({line!r}) raised {type(exc).__name__}: {exc}")
    assert accepted is False
    assert state.stats().rejected == {"invalid_utf8": 1}
    assert state.rejected()[-1].reason == "invalid_utf8"
    assert state.rejected()[-1].envelope == ENV
    assert state.snapshot() == before
    assert state.version == 1


@pytest.mark.parametrize("raw", [b'{"a": "\\ud800"}', b'{"a": "\\udfff"}', b'{"a": "x\\ud83d"}'])
def test_escaped_lone_surrogate_is_not_called_nan_or_infinity(raw: bytes) -> None:
    result = parse_shard(raw)
    assert isinstance(result, Rejection)
    assert result.reason in ("invalid_json", "invalid_utf8"), result


# --------------------------------------------------------------------------
# samples of rejected lines
# --------------------------------------------------------------------------


def test_rejected_sample_is_truncated_to_sample_chars() -> None:
    state = State(sample_chars=10)
    line = "not json: " + "é" * 100
    assert not state.ingest(line, ENV)
    (sample,) = state.rejected()
    assert sample.text == line[:10]
    assert not state.ingest("é" * 100)
    assert state.rejected()[-1].text == "é" * 10
    assert len(state.rejected()[-1].text) == 10


def test_rejected_sample_of_a_short_line_is_whole() -> None:
    state = State(sample_chars=512)
    assert not state.ingest(b"short line", ENV)
    assert state.rejected()[-1].text == "short line"
    assert state.rejected()[-1].detail != ""


def test_rejected_samples_are_bounded_and_numbered() -> None:
    state = State(rejected_size=3)
    assert state.ingest(b'{"a": 1}')
    for i in range(5):
        assert not state.ingest(f"bad {i}".encode(), Envelope(f"src-{i}"))
    samples = state.rejected()
    assert [s.text for s in samples] == ["bad 2", "bad 3", "bad 4"]
    assert [s.seq for s in samples] == [4, 5, 6]
    assert [s.envelope.source for s in samples] == ["src-2", "src-3", "src-4"]
    # the counts are not bounded by the samples
    assert state.stats().rejected == {"invalid_json": 5}
    assert state.stats().lines == 6


def test_rejected_counts_by_exact_reason() -> None:
    state = State(limits=Limits(max_line_bytes=50, max_depth=3))
    lines = [
        b"",
        b" ",
        b"x" * 51,
        b"\xff",
        b"nope",
        b"nope again",
        b'{"a": NaN}',
        b"[1]",
        b"null",
        b'{"a": {"b": {"c": {}}}}',
        b'{"ok": 1}',
    ]
    results = [state.ingest(line) for line in lines]
    assert results == [False] * 10 + [True]
    assert state.stats().rejected == {
        "empty": 2,
        "too_large": 1,
        "invalid_utf8": 1,
        "invalid_json": 2,
        "nan_or_infinity": 1,
        "not_an_object": 2,
        "too_deep": 1,
    }
    assert set(state.stats().rejected) == set(REASONS)
    assert [r.reason for r in state.rejected()] == [
        "empty",
        "empty",
        "too_large",
        "invalid_utf8",
        "invalid_json",
        "invalid_json",
        "nan_or_infinity",
        "not_an_object",
        "not_an_object",
        "too_deep",
    ]
    assert state.snapshot() == {"ok": 1}
    assert state.version == 1
    assert state.seq == 11


# --------------------------------------------------------------------------
# parse_shard never raises
# --------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parse_shard_never_raises_on_random_bytes(raw: bytes) -> None:
    result = parse_shard(raw, Limits(max_line_bytes=150, max_depth=4))
    assert isinstance(result, dict | Rejection)
    if isinstance(result, Rejection):
        assert result.reason in REASONS


_JSONISH = st.text(alphabet=st.sampled_from(list('{}[]":,0123456789.eE-+ \tnultrsfaNIy\\')))


@settings(max_examples=300, deadline=None)
@given(_JSONISH)
def test_ingest_never_raises_on_json_like_text(line: str) -> None:
    state = State(limits=Limits(max_depth=4))
    accepted = state.ingest(line)
    if accepted:
        assert state.snapshot() == merge_patch({}, json.loads(line))
    else:
        (sample,) = state.rejected()
        assert sample.reason in REASONS


def test_parse_shard_accepts_an_object() -> None:
    assert parse_shard(b'{"a": [1, 2.5, "x", null, true, {"b": {}}]}') == {
        "a": [1, 2.5, "x", None, True, {"b": {}}]
    }
    assert parse_shard(b'  {"a": 1}\n') == {"a": 1}
    assert parse_shard(b"{}") == {}


def test_parse_shard_returns_a_fresh_object_each_time() -> None:
    raw = b'{"a": {"b": 1}}'
    first = parse_shard(raw)
    second = parse_shard(raw)
    assert first == second
    assert first is not second
    assert isinstance(first, dict)
    assert isinstance(second, dict)
    assert first["a"] is not second["a"]


# --------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"max_depth": 0}, "max_depth must be a positive integer, got 0"),
        ({"max_depth": -1}, "max_depth must be a positive integer, got -1"),
        ({"max_depth": 1.5}, "max_depth must be a positive integer, got 1.5"),
        ({"max_depth": True}, "max_depth must be a positive integer, got True"),
        ({"max_depth": None}, "max_depth must be a positive integer, got None"),
        ({"max_line_bytes": 0}, "max_line_bytes must be a positive integer, got 0"),
        ({"max_line_bytes": -100}, "max_line_bytes must be a positive integer, got -100"),
        ({"max_line_bytes": "100"}, "max_line_bytes must be a positive integer, got '100'"),
    ],
)
def test_bad_limits_raise_config_error_naming_the_value(kwargs: dict[str, Any], shown: str) -> None:
    with pytest.raises(ConfigError) as info:
        Limits(**kwargs)
    assert shown in str(info.value)


def test_good_limits() -> None:
    limits = Limits(max_line_bytes=1, max_depth=1)
    assert limits.max_line_bytes == 1
    assert limits.max_depth == 1
    assert parse_shard(b"{}", Limits(max_line_bytes=2, max_depth=1)) == {}
    _assert_parse_rejects(b'{"a":{}}', "too_deep", Limits(max_depth=1))
