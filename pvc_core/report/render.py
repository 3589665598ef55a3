"""Render an HTML report in headless Chromium and check that every figure loads.

The report (:mod:`pvc_core.report.html`) is one self-contained file whose figures are embedded as
``<img src="data:image/png;base64,...">``. A figure that is empty, badly encoded or missing still
gives well-formed HTML, so parsing the text cannot tell whether a reader will see it; only a
browser can. :func:`render_report` therefore opens the report in a real (headless) Chromium and
asks the browser, after the page has loaded, which ``<img>`` elements failed.

Why this is hand-written: no library kept in this project renders HTML without a browser, and the
libraries that drive one (Selenium, Playwright, pyppeteer) add a Python dependency plus a driver
or a browser download of their own. Chromium's ``--dump-dom`` mode is enough: a copy of the report
gets a small script injected before ``</body>`` which, on ``window.load``, writes a JSON summary of
the images into ``<pre id="dlpvc-render-check">``; Chromium prints the DOM once the page is idle,
and the summary is parsed back out of it. The only requirement is a Chromium executable (Debian's
``chromium``, installed by ``scripts/install_chromium.sh``; see :func:`find_chromium`).

Chromium flags, tested with Debian 12's chromium 156:

* ``--headless``: plain, not ``--headless=new``. Since Chrome 132 plain ``--headless`` *is* the
  new headless mode (the old one moved to the separate ``chrome-headless-shell``), and
  ``headless_shell`` accepts only the plain flag; all variants render this check the same.
* ``--no-sandbox``: Chromium refuses to start as root with its sandbox (CI runs as root).
* ``--virtual-time-budget``: ``--dump-dom`` prints after the page's load event plus this much
  *virtual* time (timers run at once). Virtual time does not wait for off-thread work such as
  image decoding, so the check must not be asynchronous (see ``_CHECK_SCRIPT``).
* ``--user-data-dir`` in a fresh temporary folder: no profile in ``$HOME``, and no profile lock
  shared between concurrent renders.
* ``--disable-dev-shm-usage``: containers often have a tiny ``/dev/shm``.

Chromium writes harmless D-Bus errors to stderr on machines without a session bus; stderr is
read only to explain a failure.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TypedDict

ENV_CHROMIUM = "DLPVC_CHROMIUM"
"""Environment variable naming the browser executable (a path or a name on PATH); overrides the search."""

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "headless_shell")
"""Executable names searched on PATH, in order."""

SUMMARY_ID = "dlpvc-render-check"
VIRTUAL_TIME_BUDGET_MS = 10_000
SRC_PREFIX_CHARS = 64

# Injected before </body>, so it runs while the page is parsed: lazy images are made eager (the load
# event then waits for them too), and the load handler checks every <img> synchronously, so the
# summary is in the DOM before --dump-dom prints it. (An asynchronous check, e.g. await img.decode(),
# races --virtual-time-budget: virtual time does not wait for image decoding.)
_CHECK_SCRIPT = """<script>
(function () {
  var ID = "%(id)s", N = %(n)d;
  function write(obj) {
    var pre = document.createElement("pre");
    pre.id = ID;
    pre.textContent = JSON.stringify(obj);
    (document.body || document.documentElement).appendChild(pre);
  }
  function name(img, k) {
    var src = img.getAttribute("src") || "";
    return img.getAttribute("alt") || src.slice(0, N) || ("img[" + k + "]");
  }
  Array.prototype.forEach.call(document.images, function (img) {
    if (img.loading === "lazy") img.loading = "eager";
  });
  window.addEventListener("load", function () {
    try {
      var imgs = Array.prototype.slice.call(document.images), broken = [];
      imgs.forEach(function (img, k) {
        if (!img.complete || img.naturalWidth === 0) broken.push(name(img, k));
      });
      write({images: imgs.length, broken: broken, title: document.title});
    } catch (e) {
      write({error: String(e)});
    }
  });
})();
</script>
"""


class RenderError(RuntimeError):
    """The report could not be rendered: no Chromium, Chromium failed or timed out, or the page
    produced no summary. ``str(error)`` is one line that says which."""


class ChromiumNotFound(RenderError):
    """No Chromium executable was found (see :func:`find_chromium`)."""


class RenderResult(TypedDict):
    """What :func:`render_report` returns."""

    images: int
    """Number of ``<img>`` elements in the rendered document."""
    broken: list[str]
    """The alt text (or, without one, the first 64 characters of src) of each image that did not load."""
    title: str
    """The document's title."""


def find_chromium() -> str | None:
    """The path of a Chromium executable, or None.

    ``$DLPVC_CHROMIUM``, when set and not empty, decides alone: its value (a path, or a name looked
    up on PATH) is returned if it is an executable, otherwise None. Without it, the first of
    ``chromium``, ``chromium-browser``, ``google-chrome`` and ``headless_shell`` on PATH.
    """
    override = os.environ.get(ENV_CHROMIUM, "").strip()
    if override:
        return shutil.which(override)
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _instrumented(page: bytes, base_dir: Path) -> bytes:
    """The page with the check script before its last ``</body>`` (or at its end) and, when it has
    no ``<base>``, a ``<base href>`` to its own folder, so relative links resolve as in the original."""
    script = (_CHECK_SCRIPT % {"id": SUMMARY_ID, "n": SRC_PREFIX_CHARS}).encode()
    ends = [m.start() for m in re.finditer(rb"</body\s*>", page, re.IGNORECASE)]
    page = page[:ends[-1]] + script + page[ends[-1]:] if ends else page + script
    if not re.search(rb"<base[\s>]", page, re.IGNORECASE):
        base = f'<base href="{html.escape(base_dir.as_uri().rstrip("/") + "/")}">'.encode()
        head = re.search(rb"<head(\s[^>]*)?>", page, re.IGNORECASE)
        if head:
            page = page[:head.end()] + base + page[head.end():]
        else:  # before <html>'s content; a <base> outside <head> still applies
            doctype = re.match(rb"\s*<!doctype[^>]*>", page, re.IGNORECASE)
            at = doctype.end() if doctype else 0
            page = page[:at] + base + page[at:]
    return page


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the process group started for ``proc`` (Chromium leaves helper processes behind)."""
    if hasattr(os, "killpg"):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    else:  # pragma: no cover - not POSIX
        proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        pass


def _last_error_line(stderr: str) -> str:
    """The last stderr line worth showing (not Chromium's D-Bus noise), or ''."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and "dbus" not in ln.lower()]
    return lines[-1][:300] if lines else ""


def render_report(html_path: str | Path, timeout_s: float = 60.0, *, chromium: str | None = None) -> RenderResult:
    """Render ``html_path`` in headless Chromium and report which ``<img>`` elements failed to load.

    Parameters
    ----------
    html_path:
        The HTML file (normally a run's ``report/report.html``). Relative links resolve against its
        folder, as when a reader opens it.
    timeout_s:
        Wall-clock limit for Chromium; it and its helper processes are killed after it.
    chromium:
        The browser executable; by default :func:`find_chromium`.

    Returns
    -------
    ``{"images": n, "broken": [...], "title": str}``: the number of ``<img>`` elements, the alt text
    (or src prefix) of each that is not complete or has ``naturalWidth == 0`` at the page's load
    event (lazy images are made eager first), and the document's title.

    Raises
    ------
    ChromiumNotFound
        No executable (install with ``bash scripts/install_chromium.sh`` or set ``$DLPVC_CHROMIUM``).
    RenderError
        The file is missing, Chromium timed out or failed, or the page produced no summary.
    """
    src = Path(html_path).resolve()
    if not src.is_file():
        raise RenderError(f"{html_path}: no such HTML file")
    exe = chromium or find_chromium()
    if exe is None:
        where = f"${ENV_CHROMIUM}={os.environ[ENV_CHROMIUM]!r} is not an executable" \
            if os.environ.get(ENV_CHROMIUM, "").strip() else f"none of {', '.join(CHROMIUM_NAMES)} is on PATH"
        raise ChromiumNotFound(f"no Chromium to render {src.name}: {where} "
                               "(install with: bash scripts/install_chromium.sh)")

    with tempfile.TemporaryDirectory(prefix="dlpvc-render-", ignore_cleanup_errors=True) as tmp:
        tmpdir = Path(tmp)
        page = tmpdir / src.name
        page.write_bytes(_instrumented(src.read_bytes(), src.parent))
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
               "--hide-scrollbars", f"--user-data-dir={tmpdir / 'profile'}",
               "--allow-file-access-from-files", f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
               "--dump-dom", page.as_uri()]
        # Output goes to files, not pipes: helper processes that outlive a killed browser would
        # keep a pipe open and block the read.
        out_path, err_path = tmpdir / "stdout.html", tmpdir / "stderr.txt"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            t0 = time.monotonic()
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                        start_new_session=True)
            except OSError as e:
                raise RenderError(f"cannot start {exe}: {e.strerror or e}") from None
            try:
                rc = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise RenderError(f"{exe} did not finish rendering {src.name} within {timeout_s:g} s") from None
            _kill_group(proc)  # helpers still running after a normal exit
            elapsed = time.monotonic() - t0
        dom = out_path.read_text(encoding="utf-8", errors="replace")
        stderr = err_path.read_text(encoding="utf-8", errors="replace")

    found = re.findall(rf'<pre id="{SUMMARY_ID}">(.*?)</pre>', dom, re.DOTALL)
    if not found:
        why = f"exit code {rc}" + (f", {_last_error_line(stderr)}" if _last_error_line(stderr) else "")
        raise RenderError(f"{exe} printed no render summary for {src.name} after {elapsed:.1f} s ({why})")
    try:
        summary = json.loads(html.unescape(found[-1]))
    except json.JSONDecodeError as e:
        raise RenderError(f"unreadable render summary for {src.name}: {e}") from None
    if "error" in summary:
        raise RenderError(f"render check failed in the page {src.name}: {summary['error']}")
    return RenderResult(images=int(summary["images"]), broken=[str(b) for b in summary["broken"]],
                        title=str(summary["title"]))
