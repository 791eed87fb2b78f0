"""Path patterns: parsing, matching, finding, and writing paths back as patterns."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_livecluster import PatternError, format_path, parse_pattern
from pytest_livecluster.core.paths import GLOBSTAR, STAR, Pattern
from pytest_livecluster.exceptions import ConfigError

# --------------------------------------------------------------------------
# parse_pattern
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a", ("a",)),
        ("a.b.c", ("a", "b", "c")),
        ("*", (STAR,)),
        ("**", (GLOBSTAR,)),
        ("a.*.b", ("a", STAR, "b")),
        ("a.**.b", ("a", GLOBSTAR, "b")),
        ("**.x", (GLOBSTAR, "x")),
        (
            'intents.*.resolution.*.item_scraped."site1.example".item_sent',
            (
                "intents",
                STAR,
                "resolution",
                STAR,
                "item_scraped",
                "site1.example",
                "item_sent",
            ),
        ),
        ('"a.b"', ("a.b",)),
        ('"*"', ("*",)),
        ('"**"', ("**",)),
        ('"x*y"', ("x*y",)),
        ('""', ("",)),
        ('a."".b', ("a", "", "b")),
        ('"say \\"hi\\""', ('say "hi"',)),
        ('"back\\\\slash"', ("back\\slash",)),
        ('"a\\\\"."b"', ("a\\", "b")),
        ('"\\"".x', ('"', "x")),
        # A backslash before any other character is kept as it is.
        ('"a\\nb"', ("a\\nb",)),
        ("héllo.wörld.日本", ("héllo", "wörld", "日本")),
        ("with space.x", ("with space", "x")),
        ("1.2", ("1", "2")),
    ],
)
def test_parse_pattern_segments(text: str, segments: tuple[object, ...]) -> None:
    pattern = parse_pattern(text)
    assert isinstance(pattern, Pattern)
    assert pattern.segments == segments
    assert pattern.text == text
    assert str(pattern) == text


def test_wildcards_are_distinct_from_quoted_stars() -> None:
    assert parse_pattern("*").segments[0] is STAR
    assert parse_pattern("**").segments[0] is GLOBSTAR
    assert parse_pattern('"*"').segments[0] == "*"
    assert parse_pattern('"*"').segments[0] is not STAR
    assert parse_pattern('"**"').segments[0] is not GLOBSTAR


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty segment"),
        ("a..b", "empty segment"),
        (".a", "empty segment"),
        ("a.", "ends with '.'"),
        ("a.b.", "ends with '.'"),
        ('"a".', "ends with '.'"),
        ("a*b", "mixes"),
        ("a*", "mixes"),
        ("*a", "mixes"),
        ("***", "mixes"),
        ("x.a*b.y", "mixes"),
        ('a"b"', "mixes"),
        ('"abc', "never closed"),
        ('a."bc', "never closed"),
        ('"abc\\"', "never closed"),
        ('"a"b', "expected '.'"),
        ('"a""b"', "expected '.'"),
        ('x."a"*', "expected '.'"),
    ],
)
def test_malformed_pattern_raises_naming_the_pattern(text: str, why: str) -> None:
    with pytest.raises(PatternError) as info:
        parse_pattern(text)
    message = str(info.value)
    assert repr(text) in message
    assert why in message


def test_pattern_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        parse_pattern("a..b")


def test_non_string_pattern_raises_pattern_error() -> None:
    with pytest.raises(PatternError, match="a pattern is a string, got 42"):
        parse_pattern(42)  # type: ignore[arg-type]


def test_unclosed_quote_reports_its_column() -> None:
    with pytest.raises(PatternError, match="column 3"):
        parse_pattern('a."bc')


# --------------------------------------------------------------------------
# Pattern.matches
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "expected"),
    [
        ("a.b", ("a", "b"), True),
        ("a.b", ("a",), False),
        ("a.b", ("a", "b", "c"), False),
        ("a.b", ("a", "c"), False),
        ("a.b", (), False),
        ("a.*", ("a", "anything"), True),
        ("a.*", ("a",), False),
        ("a.*", ("a", "x", "y"), False),
        ("*.*", ("x", "y"), True),
        ("*", (), False),
        ("a.**", ("a",), True),
        ("a.**", ("a", "x"), True),
        ("a.**", ("a", "x", "y", "z"), True),
        ("a.**", ("b", "x"), False),
        ("a.**.z", ("a", "z"), True),
        ("a.**.z", ("a", "x", "z"), True),
        ("a.**.z", ("a", "x", "y", "z"), True),
        ("a.**.z", ("a", "z", "z"), True),
        ("a.**.z", ("a", "x", "y"), False),
        ("a.**.z", ("a", "z", "q"), False),
        ("**", (), True),
        ("**", ("x", "y", "z"), True),
        ("**.z", ("z",), True),
        ("**.z", ("q",), False),
        ("a.*.**", ("a",), False),
        ("a.*.**", ("a", "b"), True),
        ("a.*.**", ("a", "b", "c"), True),
        ('"a.b".c', ("a.b", "c"), True),
        ('"a.b".c', ("a", "b", "c"), False),
        ('a."*"', ("a", "*"), True),
        ('a."*"', ("a", "x"), False),
        ('a."**"', ("a", "x", "y"), False),
        (
            'intents.*.resolution.*.item_scraped."site1.example".item_sent',
            (
                "intents",
                "i-1",
                "resolution",
                "scraper-3",
                "item_scraped",
                "site1.example",
                "item_sent",
            ),
            True,
        ),
        (
            'intents.*.resolution.*.item_scraped."site1.example".item_sent',
            ("intents", "i-1", "resolution", "scraper-3", "item_scraped", "site2", "item_sent"),
            False,
        ),
    ],
)
def test_matches(text: str, path: tuple[str, ...], expected: bool) -> None:
    assert parse_pattern(text).matches(path) is expected


def test_matches_accepts_any_sequence() -> None:
    pattern = parse_pattern("a.*.c")
    assert pattern.matches(["a", "b", "c"])
    assert not pattern.matches(["a", "b"])


# --------------------------------------------------------------------------
# Pattern.find
# --------------------------------------------------------------------------

TREE = {
    "intents": {
        "i-1": {
            "host": "scraper-1",
            "resolution": {
                "scraper-1": {
                    "item_scraped": {"a.example": {"item_sent": 4}, "b": {"item_sent": 1}}
                },
                "spotter-2": {"item_scraped": {"a.example": {"item_sent": 7}}},
            },
        },
        "i-2": {"host": "scraper-2", "resolution": "pending"},
        "i-3": 5,
    },
    "scraper-1": {"msg": "Hello World"},
}


def _found(text: str, tree: object = TREE) -> dict[tuple[object, ...], object]:
    result = dict(parse_pattern(text).find(tree))
    # find yields every path at most once
    assert len(result) == len(list(parse_pattern(text).find(tree)))
    return result


def test_find_literal_path() -> None:
    assert _found("scraper-1.msg") == {("scraper-1", "msg"): "Hello World"}


def test_find_missing_path_yields_nothing() -> None:
    assert _found("nope") == {}
    assert _found("scraper-1.nope") == {}
    # cannot descend into a string
    assert _found("scraper-1.msg.x") == {}


def test_find_star() -> None:
    assert _found("intents.*.host") == {
        ("intents", "i-1", "host"): "scraper-1",
        ("intents", "i-2", "host"): "scraper-2",
    }


def test_find_star_over_counter_leaves() -> None:
    assert _found("intents.*.resolution.*.item_scraped.*.item_sent") == {
        ("intents", "i-1", "resolution", "scraper-1", "item_scraped", "a.example", "item_sent"): 4,
        ("intents", "i-1", "resolution", "scraper-1", "item_scraped", "b", "item_sent"): 1,
        ("intents", "i-1", "resolution", "spotter-2", "item_scraped", "a.example", "item_sent"): 7,
    }


def test_find_quoted_key() -> None:
    assert _found('intents.*.resolution.*.item_scraped."a.example".item_sent') == {
        ("intents", "i-1", "resolution", "scraper-1", "item_scraped", "a.example", "item_sent"): 4,
        ("intents", "i-1", "resolution", "spotter-2", "item_scraped", "a.example", "item_sent"): 7,
    }


def test_find_globstar_any_depth_including_zero() -> None:
    found = _found("**.item_sent")
    assert sorted(found.values()) == [1, 4, 7]
    tree = {"item_sent": 1, "x": {"item_sent": 2, "y": {"z": {"item_sent": 3}}}}
    assert _found("**.item_sent", tree) == {
        ("item_sent",): 1,
        ("x", "item_sent"): 2,
        ("x", "y", "z", "item_sent"): 3,
    }


def test_find_trailing_globstar_selects_node_and_everything_below() -> None:
    tree = {"a": {"b": {"c": 1}, "d": 2}, "e": 3}
    assert _found("a.**", tree) == {
        ("a",): tree["a"],
        ("a", "b"): tree["a"]["b"],
        ("a", "b", "c"): 1,
        ("a", "d"): 2,
    }


def test_find_yields_the_trees_own_objects() -> None:
    tree = {"a": {"b": {"c": 1}}}
    ((path, value),) = list(parse_pattern("a.b").find(tree))
    assert path == ("a", "b")
    assert value is tree["a"]["b"]


def test_find_on_non_dict_yields_nothing() -> None:
    assert list(parse_pattern("**").find([1, 2])) == []
    assert list(parse_pattern("*").find("text")) == []
    assert list(parse_pattern("*").find(None)) == []


# --------------------------------------------------------------------------
# format_path
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("a", "b"), "a.b"),
        (("intents", "i-1", "site1.example"), 'intents.i-1."site1.example"'),
        (("*",), '"*"'),
        (("**",), '"**"'),
        (("",), '""'),
        (('say "hi"',), '"say \\"hi\\""'),
        (("back\\slash",), '"back\\\\slash"'),
        ((1, "x"), "1.x"),
    ],
)
def test_format_path(path: tuple[object, ...], text: str) -> None:
    assert format_path(path) == text


AWKWARD_KEY = st.one_of(
    st.sampled_from(["", ".", "*", "**", '"', "\\", '\\"', "a.b", "a*b", '"quoted"', "x\\", " "]),
    st.text(alphabet=st.sampled_from(list('ab.*"\\ é日')), max_size=8),
    st.text(max_size=8),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(AWKWARD_KEY, min_size=1, max_size=6))
def test_format_path_round_trips_through_parse_pattern(path: list[str]) -> None:
    text = format_path(path)
    pattern = parse_pattern(text)
    assert pattern.segments == tuple(path)
    # quoted keys are literals, never wildcards
    assert STAR not in pattern.segments
    assert GLOBSTAR not in pattern.segments
    assert pattern.matches(path)
    tree: dict[str, object] = {}
    node = tree
    for key in path[:-1]:
        node = node.setdefault(key, {})  # type: ignore[assignment]
    node[path[-1]] = "leaf"
    assert list(pattern.find(tree)) == [(tuple(path), "leaf")]
