"""Secrets: ``env:`` resolution, the registry of known secret values, and their masking.

Owner of every promise about secrets; owner: used by every layer (sources,
alerts, plugin, the simulated cluster). Nothing else masks on its own:

- :func:`resolve_env` reads ``env:NAME`` values (headers, alert targets) and
  remembers what it read;
- :func:`remember` and :func:`remember_url` register secret values the caller
  knows (literal header values, a URL's password and secret query values);
- :func:`scrub` masks every remembered value in text a server or a library
  sends back, also percent-encoded and inside a base64 ``user:password`` pair
  (an echoed ``Authorization: Basic …`` header); :func:`scrub_data` does so
  in every string of a JSON-like value (reports, ledgers, alert bodies);
- :func:`redact_url` and :func:`origin` make a URL printable, and
  :func:`display_spec` a source spec (what the header and messages print).

There is one mark, :data:`MASK`. The registry is process-wide: a secret that
one source resolved must not leak through another printer's message either.
It only grows; secrets are few and live as long as the run.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import threading
from typing import Any, Final, TypeVar, cast
from urllib.parse import quote, quote_plus, unquote

from .exceptions import ConfigError

__all__ = [
    "ENV_PREFIX",
    "MASK",
    "display_spec",
    "header_value",
    "origin",
    "redact_url",
    "remember",
    "remember_url",
    "resolve_env",
    "scrub",
    "scrub_data",
]

_T = TypeVar("_T")

MASK: Final = "***"

ENV_PREFIX: Final = "env:"
# Shorter "secrets" (a header like ``X-Debug: 1``) would mask innocent text inside words.
MIN_SECRET: Final = 4

# Query parameters whose values are secrets (token, api_key, password, X-Amz-Signature, ...).
_SECRET_PARAM: Final = re.compile(r"token|key|secret|pass|pwd|auth|sig|credential|session", re.I)
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):(//)?")
# What may follow the userinfo's ``@``: a host (name, IPv4, [IPv6]) and an optional port.
_HOST: Final = re.compile(r"(\[[0-9A-Za-z:.%]*\]|[A-Za-z0-9.\-_~%]+)(:[0-9]*)?")
_AUTHORITY_END: Final = re.compile(r"[/?#]")
# Runs that may be base64 (standard or URL-safe alphabet), long enough for "u:pass".
_BASE64_RUN: Final = re.compile(r"[A-Za-z0-9+/_\-]{8,}={0,2}")

_lock = threading.Lock()
_secrets: set[str] = set()
# Every form of every secret that scrub() looks for, longest first; rebuilt on change.
_needles: tuple[str, ...] = ()
_encoded: tuple[bytes, ...] = ()


def resolve_env(value: str, *, what: str) -> str:
    """``value``, or for ``env:NAME`` the variable's value (remembered as a secret).

    ``what`` names the setting for the error, e.g. ``"header 'X-Token' for URL"``.
    An unset or empty variable raises :class:`~.exceptions.ConfigError`; its
    message names ``what`` and the variable, never a value.
    """
    if not value.startswith(ENV_PREFIX):
        return value
    name = value.removeprefix(ENV_PREFIX)
    resolved = os.environ.get(name)
    if resolved is None:
        raise ConfigError(f"{what} names the environment variable {name}, which is not set")
    if not resolved.strip():
        raise ConfigError(f"{what} names the environment variable {name}, which is empty")
    remember(resolved)
    return resolved


def remember(*secrets: str) -> None:
    """Register secret values for :func:`scrub`; values under 4 characters are ignored."""
    global _needles, _encoded
    fresh = {s for s in secrets if len(s) >= MIN_SECRET}
    with _lock:
        if fresh <= _secrets:
            return
        _secrets.update(fresh)
        needles = {form for s in _secrets for form in _forms(s)}
        _needles = tuple(sorted(needles, key=len, reverse=True))
        _encoded = tuple(s.encode("utf-8", "surrogatepass") for s in _secrets)


#: Header names whose values are credentials, whatever their value looks like.
_SECRET_HEADER: Final = re.compile(r"^(authorization|proxy-authorization|cookie)$", re.I)


def header_value(name: str, value: str, *, what: str) -> str:
    """A configured header's value: ``env:NAME`` resolved (see :func:`resolve_env`).

    The value is remembered for :func:`scrub` when it came from the
    environment or the header's name says it holds a credential
    (``Authorization``, ``Cookie``, or a name with token, key, secret, pass,
    auth, session...); an ``Accept: text/event-stream`` stays readable.
    """
    resolved = resolve_env(value, what=what)
    if _SECRET_HEADER.match(name) or _SECRET_PARAM.search(name):
        remember(resolved)
    return resolved


def remember_url(url: str) -> None:
    """Register the password and the secret-looking query values of ``url``."""
    _, userinfo, rest = _cut_userinfo(url)
    if userinfo is not None:
        password = userinfo.partition(":")[2]
        remember(password, unquote(password))
    query = rest.partition("#")[0].partition("?")[2]
    for param in query.split("&"):
        name, eq, value = param.partition("=")
        if eq and _SECRET_PARAM.search(unquote(name)):
            remember(value, unquote(value), unquote(value.replace("+", " ")))


def scrub(text: str) -> str:
    """``text`` with every remembered secret, in any of its forms, replaced by :data:`MASK`.

    Occurrences that overlap or touch are merged into one mark, so neither the
    longer of two secrets nor the rest of an overlapping one shows.
    """
    with _lock:
        needles, encoded = _needles, _encoded
    if not needles:
        return text
    spans = [span for needle in needles for span in _find_all(text, needle)]
    spans += _base64_spans(text, encoded)
    if not spans:
        return text
    out: list[str] = []
    done = 0
    for start, end in _merge(spans):
        out += [text[done:start], MASK]
        done = end
    out.append(text[done:])
    return "".join(out)


def scrub_data(data: _T) -> _T:
    """``data`` (JSON-like: dicts, lists, tuples, strings) with :func:`scrub` applied to
    every string in it, keys included; a copy, the input is not changed."""
    out: Any = data
    if isinstance(data, str):
        out = scrub(data)
    elif isinstance(data, dict):
        out = {scrub_data(k): scrub_data(v) for k, v in data.items()}
    elif isinstance(data, list):
        out = [scrub_data(v) for v in data]
    elif isinstance(data, tuple):
        out = tuple(scrub_data(v) for v in data)
    return cast(_T, out)


def redact_url(url: str) -> str:
    """``url`` for display: userinfo and secret-looking query values become :data:`MASK`.

    The fragment is dropped (never sent to a server, and it may hold a token).
    The scheme is lower-cased. Never raises: anything that is not quite a URL
    is treated the same way, erring on the side of masking.
    """
    scheme, userinfo, rest = _cut_userinfo(url)
    rest = rest.partition("#")[0]
    head, question, query = rest.partition("?")
    if question:
        head += "?" + "&".join(_mask_param(p) for p in query.split("&"))
    return scheme + (f"{MASK}@" if userinfo is not None else "") + head


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, or ``""`` when it names no host. Never raises."""
    scheme, _, rest = _cut_userinfo(url)
    authority = _AUTHORITY_END.split(rest, maxsplit=1)[0]
    if not scheme.endswith("//") or not _HOST.fullmatch(authority):
        return ""
    return scheme + authority.removesuffix(":")


def display_spec(spec: str) -> str:
    """What may be printed of a source spec; never raises.

    - a URL (``scheme://…``, any scheme, any case): its :func:`origin`,
      ``scheme://host[:port]`` (``scheme://…`` when it names no host);
    - ``docker:label=K=V;host=URL`` (and ``swarm:``): the spec with the host URL cut
      to its origin (a ``unix://`` path is shown redacted);
    - ``file:PATH``, ``sim:…`` and a word without ``:`` or ``@`` (``sim``): the spec,
      since a path or a label is not a secret;
    - anything else, which may be a URL written wrongly (``bob:pw@host``):
      only what comes before its first ``:``, then ``…``.

    Every result also passes through :func:`scrub`. The caller escapes it for
    its medium.
    """
    url = _SCHEME.match(spec)
    if url is not None and url.group(2):
        return scrub(origin(spec) or f"{url.group(1).lower()}://…")
    if spec.startswith(("docker:", "swarm:")):
        return scrub(_DOCKER_HOST.sub(_display_host, spec))
    if spec.startswith(("file:", "sim:")) or not (":" in spec or "@" in spec):
        return scrub(spec)
    return scrub(spec.partition(":")[0].partition("@")[0] + ":…")


# -- helpers ------------------------------------------------------------------------------


def _forms(secret: str) -> set[str]:
    """The ways ``secret`` shows up in text: as is and percent-encoded (as URLs carry it)."""
    forms = {secret}
    for encode, safe in ((quote, ""), (quote, "/"), (quote_plus, "")):
        # surrogateescape: an undecodable environment variable goes out as its original bytes.
        with contextlib.suppress(UnicodeEncodeError):
            forms.add(encode(secret, safe=safe, errors="surrogateescape"))
    # Percent-encoding is case-insensitive in its hex digits.
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), f) for f in forms}
    return forms


def _find_all(text: str, needle: str) -> list[tuple[int, int]]:
    spans = []
    start = text.find(needle)
    while start >= 0:
        spans.append((start, start + len(needle)))
        start = text.find(needle, start + 1)
    return spans


def _base64_spans(text: str, secrets: tuple[bytes, ...]) -> list[tuple[int, int]]:
    """Base64 runs that decode to text holding a secret: ``Basic base64(user:password)``."""
    spans = []
    for match in _BASE64_RUN.finditer(text):
        decoded = _b64decode(match.group())
        if decoded and any(secret in decoded for secret in secrets):
            spans.append(match.span())
    return spans


def _b64decode(run: str) -> bytes | None:
    data = run.rstrip("=").replace("-", "+").replace("_", "/")
    if len(data) % 4 == 1:
        return None
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _cut_userinfo(url: str) -> tuple[str, str | None, str]:
    """``(scheme prefix, userinfo or None, the rest)``; the prefix is ``""`` without a scheme.

    The userinfo ends at the last ``@`` that a host follows, even past a ``/``,
    ``?`` or ``#``: a password written with those unencoded must not be
    mistaken for a host, path or query and printed. Only when no ``@`` is
    followed by a host does the ``@`` inside the authority (as RFC 3986 reads
    it) end the userinfo.
    """
    match = _SCHEME.match(url)
    scheme = (match.group(1).lower() + ":" + (match.group(2) or "")) if match else ""
    rest = url[match.end() :] if match else url
    at = rest.rfind("@")
    while at >= 0:
        host = _AUTHORITY_END.split(rest[at + 1 :], maxsplit=1)[0]
        if _HOST.fullmatch(host):
            return scheme, rest[:at], rest[at + 1 :]
        at = rest.rfind("@", 0, at)
    authority = _AUTHORITY_END.split(rest, maxsplit=1)[0]
    if "@" in authority:
        userinfo, _, host = authority.rpartition("@")
        return scheme, userinfo, host + rest[len(authority) :]
    return scheme, None, rest


_DOCKER_HOST: Final = re.compile(r"(?<=;host=)[^;]*")


def _display_host(match: re.Match[str]) -> str:
    return origin(match.group()) or redact_url(match.group())


def _mask_param(param: str) -> str:
    name, eq, value = param.partition("=")
    return f"{name}={MASK}" if eq and value and _SECRET_PARAM.search(unquote(name)) else param
