"""The report in a real browser: headless Chromium, driven over the DevTools protocol.

A quick report is built, loaded from its file in headless Chromium, and checked:

* no console errors, no uncaught exceptions, no log entries at level error;
* no network requests: every request the page makes is the page's own file (data: URLs
  would be allowed, and none is needed);
* every formula is a MathML element laid out by the browser's MathML engine (computed
  ``display`` of ``block math`` / ``inline math``, a non-empty box), as many as the page's
  source holds and at least one per proof line and statement; no raw LaTeX in the text;
* every figure the build lists is an inline SVG with a non-empty box and drawn paths;
* a screenshot is saved as a test artifact (``artifacts/report.png`` in the checkout).

Chromium is Debian's package: the session fixture installs it with apt-get when it is
missing (root, or sudo without a password), and fails the test if it cannot.  The
DevTools client is written here on the standard library (a WebSocket is a handshake and
a framing; nothing else is needed).
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stablenn.cli import main

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
BROWSERS = ("chromium", "chromium-browser")


# ---------------------------------------------------------------- Chromium


def _find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of Debian's chromium, installed with apt-get on first use."""
    path = _find_browser()
    if path:
        return path
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            pytest.fail("chromium is not installed and this user cannot install it (not root, no sudo): "
                        "run `apt-get install -y chromium` as root")
        prefix = ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log = []
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        proc = subprocess.run(prefix + cmd, capture_output=True, text=True, env=env, timeout=1800)
        log.append(f"$ {' '.join(prefix + cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        if proc.returncode != 0:
            pytest.fail("installing chromium failed:\n" + "\n".join(log))
    path = _find_browser()
    if path is None:
        pytest.fail("apt-get installed chromium but no chromium executable is on PATH:\n" + "\n".join(log))
    return path


# ---------------------------------------------------------------- a minimal WebSocket client (RFC 6455)


class WebSocket:
    """Text frames over one TCP connection: enough for the DevTools protocol."""

    def __init__(self, url: str, timeout: float) -> None:
        m = re.fullmatch(r"ws://([^/:]+):(\d+)(/.*)", url)
        assert m, url
        host, port, path = m.group(1), int(m.group(2)), m.group(3)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the DevTools endpoint closed the connection during the handshake")
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise ConnectionError(f"WebSocket handshake refused: {status!r}")
        self.buffer = head.split(b"\r\n\r\n", 1)[1]

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buffer)))
            if not chunk:
                raise ConnectionError("the DevTools connection closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))  # clients must mask
        self.sock.sendall(head + mask + masked)

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def recv(self) -> str:
        parts: list[bytes] = []
        while True:
            b0, b1 = self._read(2)
            opcode, fin = b0 & 0x0F, b0 & 0x80
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack(">H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack(">Q", self._read(8))
            mask = self._read(4) if b1 & 0x80 else b""
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("the DevTools connection was closed by the browser")
            if opcode in (0x1, 0x2, 0x0):
                parts.append(payload)
                if fin:
                    return b"".join(parts).decode()

    def close(self) -> None:
        try:
            self._send_frame(0x8, b"")
        except OSError:
            pass
        self.sock.close()


class DevTools:
    """Commands and events of one page target."""

    def __init__(self, ws_url: str, timeout: float = 120.0) -> None:
        self.ws = WebSocket(ws_url, timeout)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method: str, timeout: float) -> dict[str, Any]:
        end = time.monotonic() + timeout
        for e in self.events:
            if e["method"] == method:
                return e
        while time.monotonic() < end:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return msg
        raise TimeoutError(f"no {method} within {timeout} s")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluation failed: {result['exceptionDetails']}")
        return result["result"].get("value")


@pytest.fixture(scope="module")
def browser(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    log = profile / "chromium.log"
    args = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
        "--disable-extensions", "--mute-audio", f"--user-data-dir={profile}", "--remote-debugging-port=0",
        "--remote-debugging-address=127.0.0.1", "about:blank",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 120
        while not port_file.exists() or not port_file.read_text().strip():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not start (exit {proc.poll()}):\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        page_url = None
        while page_url is None and time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/json/list")
            targets = json.loads(conn.getresponse().read())
            conn.close()
            page_url = next((t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"), None)
            if page_url is None:
                time.sleep(0.2)
        if page_url is None:
            pytest.fail("chromium has no page target")
        tools = DevTools(page_url)
        yield tools
        tools.ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


# ---------------------------------------------------------------- the page

_PROBE = r"""
(() => {
  const maths = [...document.querySelectorAll('math')];
  const mathInfo = maths.map(m => {
    const r = m.getBoundingClientRect();
    return {mathml: m instanceof MathMLElement, display: getComputedStyle(m).display,
            w: r.width, h: r.height, children: m.childElementCount};
  });
  const figures = [...document.querySelectorAll('figure.plot')].map(f => {
    const svg = f.querySelector(':scope > svg');
    const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    return {id: f.id, svg: !!svg, w: r.width, h: r.height, paths: svg ? svg.querySelectorAll('path').length : 0};
  });
  const text = document.body.innerText;
  const latex = ['\\frac', '\\sum', '\\sigma', '\\log', '\\left', '\\begin', '$$', '\\(', '\\[']
      .filter(t => text.includes(t));
  return JSON.stringify({
    title: document.title, maths: mathInfo, figures: figures, latex: latex,
    svgs: document.querySelectorAll('svg').length, proofs: document.querySelectorAll('.proof').length,
    scripts: document.scripts.length,
    resources: performance.getEntriesByType('resource').map(e => e.name),
    height: Math.ceil(document.documentElement.scrollHeight), width: document.documentElement.scrollWidth,
  });
})()
"""


@pytest.fixture(scope="module")
def loaded(browser: DevTools, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        err = io.StringIO()
        mp.setattr("sys.stderr", err)
        rc = main(["report", "--quick", "--out", str(out)])
    assert rc in (0, 1), rc  # 1: the page was written and says which proof or budget failed
    html_path = (out / "report.html").resolve()
    url = html_path.as_uri()
    for domain in ("Runtime", "Log", "Network", "Page"):
        browser.call(f"{domain}.enable")
    browser.call("Emulation.setDeviceMetricsOverride", width=1280, height=1000, deviceScaleFactor=1, mobile=False)
    browser.events.clear()
    nav = browser.call("Page.navigate", url=url)
    assert not nav.get("errorText"), nav
    browser.wait_for("Page.loadEventFired", timeout=180)
    probe = json.loads(browser.evaluate(_PROBE))
    # late messages (layout-time errors) arrive as events: collect what is pending
    browser.evaluate("new Promise(r => setTimeout(r, 500))")
    return {
        "url": url, "html": html_path.read_text(encoding="utf-8"), "dir": out,
        "manifest": json.loads((out / "report.json").read_text(encoding="utf-8")),
        "probe": probe, "events": list(browser.events), "rc": rc, "stderr": err.getvalue(),
    }


def test_no_console_errors(loaded):
    errors = []
    for e in loaded["events"]:
        m, p = e["method"], e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
            errors.append(f"console.{p['type']}: {p.get('args')}")
        elif m == "Runtime.exceptionThrown":
            errors.append(f"exception: {p.get('exceptionDetails')}")
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
            errors.append(f"log {p['entry']['level']}: {p['entry'].get('text')} ({p['entry'].get('url', '')})")
        elif m == "Network.loadingFailed":
            errors.append(f"loading failed: {p.get('errorText')}")
    assert not errors, "\n".join(errors)


def test_no_network_requests(loaded):
    urls = [e["params"]["request"]["url"] for e in loaded["events"] if e["method"] == "Network.requestWillBeSent"]
    assert loaded["url"] in urls  # the monitor saw the page itself
    foreign = [u for u in urls if u != loaded["url"] and not u.startswith("data:")]
    assert not foreign, foreign
    assert loaded["probe"]["resources"] == []
    assert loaded["probe"]["scripts"] == 0


def test_every_formula_is_rendered_mathml(loaded):
    from stablenn import proofs

    maths = loaded["probe"]["maths"]
    in_source = len(re.findall(r"<math[\s>]", loaded["html"]))
    expected = sum(len(p.lines()) + 1 for p in proofs.all_proofs())
    assert len(maths) == in_source >= expected
    bad = [m for m in maths if not (m["mathml"] and m["display"] in ("block math", "inline math", "math")
                                     and m["w"] > 0 and m["h"] > 0 and m["children"] > 0)]
    assert not bad, bad[:5]
    assert loaded["probe"]["latex"] == []
    assert loaded["probe"]["proofs"] >= len(proofs.names())


def test_every_plot_is_present(loaded):
    figures = {f["id"]: f for f in loaded["probe"]["figures"]}
    listed = loaded["manifest"]["figures"]
    assert listed and set(figures) == set(listed)
    bad = [f for f in figures.values() if not (f["svg"] and f["w"] > 100 and f["h"] > 50 and f["paths"] > 5)]
    assert not bad, bad
    # the error plots of every sweep and the audit plots of every measured dtype are there
    from stablenn.report._evidence import SWEEPS

    assert set(SWEEPS) <= set(figures)
    assert loaded["probe"]["svgs"] == len(listed)


def test_screenshot_artifact(loaded, browser, capsys):
    height = min(loaded["probe"]["height"], 16000)
    shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1})
    data = base64.b64decode(shot["data"])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, shot_height = struct.unpack(">II", data[16:24])
    assert (width, shot_height) == (1280, height)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "report.png"
    path.write_bytes(data)
    with capsys.disabled():
        print(f"\nscreenshot of the report (top {height} px): {path}")


# ---------------------------------------------------------------- the files of the same build


def test_files_of_the_build(loaded):
    out, html, manifest = loaded["dir"], loaded["html"], loaded["manifest"]
    md = (out / "report.md").read_text(encoding="utf-8")
    # progress on stderr: plain lines when stderr is not a terminal
    assert re.search(r"^\[1/\d+\] proofs: building$", loaded["stderr"], re.M)
    # the page is well-formed XML too (the same text a strict parser reads), with no script
    root = ET.fromstring(re.sub(r"^<!DOCTYPE html>", "", html))
    assert not [el for el in root.iter() if el.tag.endswith("script")]
    urls = set(re.findall(r"https?://[^\s\"')<]+", html))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    # the Markdown twin links every figure to its file, and names every missing piece
    for key in manifest["figures"]:
        assert f"](figures/{key}.svg)" in md
        ET.parse(out / "figures" / f"{key}.svg")
    for text in manifest["missing"]:
        feature = text.split(":", 1)[0]
        assert feature in md and feature in html
    assert manifest["times"]["wall"] > 0 and manifest["times"]["cpu"] > 0
    for needle in ("Machine and software", "s wall", "s CPU", "numpy"):
        assert needle in html and needle in md


def test_exit_status_matches_the_verdicts(loaded):
    from stablenn import proofs

    manifest = loaded["manifest"]
    assert set(manifest["proofs"]) == set(proofs.names())
    all_ok = all(manifest["proofs"].values()) and all(b["ok"] for b in manifest["budgets"])
    assert loaded["rc"] == (0 if all_ok else 1)
