"""A real headless Chromium, for tests of the HTML report page.

:func:`require_chromium` finds the browser (``$LIVECLUSTER_CHROMIUM``, else
``chromium``, ``chromium-browser`` or ``google-chrome`` on the PATH); without
one the test is skipped, with how to install it, except under ``CI=true``,
where the browser is part of the set-up (``.ci/chromium.sh install``) and the
test fails instead::

    browser = Chromium(require_chromium())
    dom = browser.dump_dom(page)                      # the DOM after rendering, as HTML
    browser.screenshot(page, artifacts_dir() / "page.png")

Headless Chromium reads the DOM and takes the screenshot by running a script
in the page: with ``--blink-settings=scriptEnabled=false`` it writes neither.
A page that must work without JavaScript forbids scripts in its own
Content-Security-Policy instead; the DevTools script that reads the DOM is
exempt from it, the page's own are not.

Each run is a fresh process with a throw-away profile, no sandbox (tests
often run as root in a container), no GPU, and every host name resolving to
nothing, so a page that tried to fetch from the network could not.
:func:`artifacts_dir` is where tests keep files for a person to look at:
``$LIVECLUSTER_ARTIFACTS``, default ``out/test-artifacts/`` under the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

from tests.support.required import missing

__all__ = [
    "ARTIFACTS_VAR",
    "CANDIDATES",
    "ENV_VAR",
    "Chromium",
    "artifacts_dir",
    "find_chromium",
    "require_chromium",
]

ENV_VAR: Final = "LIVECLUSTER_CHROMIUM"
ARTIFACTS_VAR: Final = "LIVECLUSTER_ARTIFACTS"
CANDIDATES: Final = ("chromium", "chromium-browser", "google-chrome")
REPO: Final = Path(__file__).resolve().parents[2]
#: A hang guard for one browser run, not a speed limit.
RUN_TIMEOUT: Final = 120.0


def find_chromium() -> str | None:
    """The browser to use, or None when there is none."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return next(filter(None, map(shutil.which, CANDIDATES)), None)


def require_chromium() -> str:
    """The browser's path; skips the test without one (fails it when ``CI=true``)."""
    __tracebackhide__ = True
    binary = find_chromium()
    if binary is not None:
        return binary
    configured = os.environ.get(ENV_VAR)
    reason = (
        f"${ENV_VAR}={configured} is not an executable"
        if configured
        else f"no Chromium ({', '.join(CANDIDATES)} on the PATH, or ${ENV_VAR}); "
        "install it with `.ci/chromium.sh install` (apt-get install chromium)"
    )
    return missing(reason, "the browser tests")


def artifacts_dir() -> Path:
    """The directory for files a person looks at after the run (created)."""
    path = Path(os.environ.get(ARTIFACTS_VAR) or REPO / "out" / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Chromium:
    """Runs the browser once per call, headless, on a local file."""

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def dump_dom(self, page: Path) -> str:
        """The page's DOM once loaded, serialised as HTML."""
        return self._run(page, ["--dump-dom"]).stdout

    def screenshot(
        self,
        page: Path,
        out: Path,
        *,
        size: tuple[int, int] = (1400, 2400),
    ) -> Path:
        """A PNG of the page's first ``size`` pixels, written to ``out``."""
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        self._run(page, [f"--screenshot={out}", f"--window-size={size[0]},{size[1]}"])
        assert out.is_file(), f"Chromium wrote no screenshot to {out}"
        return out

    def _run(self, page: Path, flags: list[str]) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory(prefix="livecluster-chromium-") as profile:
            command = [
                self.binary,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--hide-scrollbars",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                f"--user-data-dir={profile}",
                *flags,
                page.resolve().as_uri(),
            ]
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        if result.returncode != 0:
            raise AssertionError(
                f"Chromium exited with {result.returncode}: {result.stderr[-2000:]}"
            )
        return result
