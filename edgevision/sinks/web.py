"""A live web page of what the camera sees and what the model recognises.

``WebSink`` serves, from the standard library's ``http.server``:

==================  ======================================================================================
``/``               the page: the MJPEG stream plus label, top-3, FPS and latency as HTML text (polled)
``/stream.mjpg``    ``multipart/x-mixed-replace`` JPEGs with the label, top-3, FPS and latency drawn in
``/status``         JSON: the latest result, FPS and latency p50/p95 over a rolling window, frames, dropped
``/healthz``        ``ok``
==================  ======================================================================================

Threads, and why the pipeline never waits on a browser:

* ``publish()`` (the pipeline's result thread) copies the frame's pixels (the source may reuse its buffer
  once we return), stores the newest (frame, result) pair, updates the rolling statistics and sets an
  event. Nothing in it waits on a client or on encoding.
* One encoder thread wakes on that event, at most ``max_fps`` times a second, and draws and encodes the
  newest pair into one JPEG that every client shares. Pairs published in between are simply superseded.
* One thread per HTTP connection (bounded by ``max_clients`` streams). A stream client is sent the newest
  JPEG whenever it is ready for one, so a slow client skips frames; a client that stops reading for
  ``client_timeout`` seconds is disconnected.

Security: the sink listens on loopback by default. Any other address requires a token (the CLI's
``--web-token``): every request must then carry it as ``?token=...`` or ``Authorization: Bearer ...``,
or it gets a bare 401. Without a token, requests whose ``Host`` is not a loopback name are refused, so a web
page cannot reach the camera through DNS rebinding.

Drawing and JPEG encoding need Pillow (``pip install 'edgevision[images]'``); it is imported when the sink
is created, never by the runtime core.
"""
from __future__ import annotations

import base64
import collections
import dataclasses
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import select
import socket
import socketserver
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from ..frames import Frame, Result
from .base import Sink

log = logging.getLogger(__name__)

_BOUNDARY = "edgevision-frame"
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_STATS_WINDOW = 100  # results kept for the FPS and latency percentiles
_EXTRA_CONNECTIONS = 16  # page/status/healthz connections allowed beyond the stream clients


MIN_TOKEN_LENGTH = 16


def is_loopback(host: str) -> bool:
    """True for names and addresses that only this machine can reach ("" and 0.0.0.0 mean every interface)."""
    h = host.strip().strip("[]").lower()
    if h in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False  # another host name: assume it resolves to a reachable address


def _require_pillow():
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as e:
        raise ImportError(
            "the web sink draws the overlay and encodes JPEGs with Pillow, which is not installed; "
            "install it with: pip install 'edgevision[images]'"
        ) from e
    return Image, ImageDraw, ImageFont


class WebSink(Sink):
    """Serve a live page with the camera stream and the recognised label; see the module docstring.

    The server starts listening when the sink is constructed (``port=0`` picks a free port; read it back from
    ``port`` or ``url``) and stops in ``close()``.
    """

    name = "web"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        token: str | None = None,
        jpeg_quality: int = 80,
        max_fps: float = 15,
        *,
        max_clients: int = 8,
        client_timeout: float = 10.0,
    ) -> None:
        if token is not None and (not isinstance(token, str) or not token or token != token.strip()):
            raise ValueError(f"web token must be a non-empty string without surrounding spaces, got {token!r}")
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            # a guessable token ("change-me", "1234") protects nothing on a network
            raise ValueError(f"web token is {len(token)} characters; use at least {MIN_TOKEN_LENGTH}, e.g. from: "
                             "python3 -c 'import secrets; print(secrets.token_urlsafe(24))'")
        if token is None and not is_loopback(host):
            raise ValueError(
                f"the web page would listen on {host!r}, which other machines can reach, without a token; "
                "pass --web-token TOKEN (for example the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(16))'`), "
                "or listen on 127.0.0.1"
            )
        if not (isinstance(jpeg_quality, int) and 1 <= jpeg_quality <= 95):
            raise ValueError(f"jpeg_quality must be an integer from 1 to 95, got {jpeg_quality!r}")
        if not (max_fps > 0 and math.isfinite(max_fps)):
            raise ValueError(f"max_fps must be a positive number, got {max_fps!r}")
        if not (isinstance(max_clients, int) and max_clients >= 1):
            raise ValueError(f"max_clients must be a positive integer, got {max_clients!r}")
        self._pil = _require_pillow()  # fail here, not later in the encoder thread

        host = host.strip().strip("[]")  # "[::1]" as in a URL
        self.host = host
        self.token = token
        self.jpeg_quality = jpeg_quality
        self.max_fps = float(max_fps)
        self.max_clients = max_clients
        self.client_timeout = float(client_timeout)
        self._token_bytes = token.encode("utf-8") if token is not None else None

        # publish() -> encoder
        self._lock = threading.Lock()
        self._new = threading.Event()
        self._closing = threading.Event()
        self._closed = False
        self._latest_frame: Frame | None = None
        self._latest_result: Result | None = None
        self._version = 0
        self._frames = 0
        self._arrivals: collections.deque[float] = collections.deque(maxlen=_STATS_WINDOW)
        self._latencies: collections.deque[float] = collections.deque(maxlen=_STATS_WINDOW)
        self._last_arrival = 0.0

        # encoder -> stream clients
        self._jpeg_cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._jpeg_id = 0
        self._encode_times: collections.deque[float] = collections.deque(maxlen=30)

        # connections, so that close() can end them
        self._conn_lock = threading.Lock()
        self._conns: dict[threading.Thread, socket.socket] = {}
        self._streams = 0

        try:
            self._server = _Server((host, port), _Handler, self)
        except OSError as e:
            raise OSError(
                e.errno, f"the web page cannot listen on {host}:{port}: {e.strerror}; choose another port "
                "(--web-port) or stop the program that holds it"
            ) from e
        self.port = self._server.server_address[1]
        self._server_thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="edgevision-web-server", daemon=True
        )
        self._encoder_thread = threading.Thread(target=self._encode_loop, name="edgevision-web-encoder", daemon=True)
        self._server_thread.start()
        self._encoder_thread.start()
        log.info("web page at %s", self._url(redact=True))

    # ----------------------------------------------------------------------------------------------- public

    @property
    def url(self) -> str:
        """The page's address, with ``?token=...`` when a token is set."""
        return self._url(redact=False)

    def _url(self, redact: bool) -> str:
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            host = socket.gethostname()
        if ":" in host:
            host = f"[{host}]"
        url = f"http://{host}:{self.port}/"
        if self.token is not None:
            url += "?token=" + ("..." if redact else urllib.parse.quote(self.token, safe=""))
        return url

    def publish(self, result: Result, frame: Frame | None) -> None:
        """Store the newest (frame, result) and wake the encoder; never waits on clients or on encoding."""
        if frame is not None:
            # The source may reuse its buffer once we return (a VGA copy takes ~0.2 ms).
            frame = dataclasses.replace(frame, data=np.array(frame.data, copy=True))
        now = time.monotonic()
        with self._lock:
            if self._closed:
                return
            if frame is not None:
                self._latest_frame = frame
            self._latest_result = result
            self._version += 1
            self._frames += 1
            self._arrivals.append(now)
            self._latencies.append(float(result.latency_ms))
            self._last_arrival = now
        self._new.set()

    def status(self) -> dict[str, Any]:
        """What ``/status`` returns: the latest result and the rolling statistics (JSON-ready)."""
        with self._lock:
            r = self._latest_result
            arrivals = list(self._arrivals)
            latencies = list(self._latencies)
            frames, last = self._frames, self._last_arrival
        with self._conn_lock:
            clients = self._streams
        lat = _percentiles(latencies)
        return {
            "label": r.label if r else None,
            "score": _num(r.score) if r else None,
            "top": [{"index": int(p.index), "label": p.label, "score": _num(p.score)} for p in r.top] if r else [],
            "seq": int(r.seq) if r else None,
            "fps": _rate(arrivals),
            "latency_ms": {"last": _num(latencies[-1]) if latencies else None, **lat},
            "timings_ms": {k: _num(v) for k, v in r.timings_ms.items()} if r else {},
            "frames": frames,
            "dropped": int(r.dropped) if r else 0,
            "age_s": round(time.monotonic() - last, 3) if r else None,
            "stream_fps": _rate(list(self._encode_times)),
            "clients": clients,
        }

    def close(self) -> None:
        """Stop serving: end every stream, close every connection, join the threads. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._closing.set()
        self._new.set()
        with self._jpeg_cond:
            self._jpeg_cond.notify_all()
        self._server.shutdown()  # returns once serve_forever has stopped accepting (≤ poll_interval)
        with self._conn_lock:
            conns = dict(self._conns)
        for sock in conns.values():
            try:  # unblocks a handler stuck writing to a client that does not read
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in conns:
            t.join(timeout=2.0)
        self._encoder_thread.join(timeout=2.0)
        self._server_thread.join(timeout=2.0)
        self._server.server_close()

    # ---------------------------------------------------------------------------------------------- encoder

    def _encode_loop(self) -> None:
        period = 1.0 / self.max_fps
        last_encode = -math.inf
        frame: Frame | None = None
        seen = 0
        while True:
            self._new.wait()
            if self._closing.is_set():
                return
            wait = last_encode + period - time.monotonic()
            if wait > 0 and self._closing.wait(wait):
                return
            self._new.clear()
            with self._lock:
                if self._version == seen:
                    continue
                seen = self._version
                if self._latest_frame is not None:
                    frame = self._latest_frame
                result = self._latest_result
            stats = self.status()
            last_encode = time.monotonic()
            try:
                jpeg = self._render(frame, result, stats)
            except Exception:  # a bad frame must not kill the stream for good
                log.exception("web sink: could not draw or encode a frame")
                continue
            with self._jpeg_cond:
                self._jpeg = jpeg
                self._jpeg_id += 1
                self._encode_times.append(last_encode)
                self._jpeg_cond.notify_all()

    def _render(self, frame: Frame | None, result: Result | None, stats: dict[str, Any]) -> bytes:
        """Draw the label, top-3, FPS and latency onto the frame and encode it as a JPEG."""
        import io

        pil_image, pil_draw, pil_font = self._pil
        if frame is not None:
            img = pil_image.fromarray(np.ascontiguousarray(frame.to_rgb()), "RGB")
        else:
            img = pil_image.new("RGB", (640, 480), (32, 32, 32))
        _draw_overlay(img, pil_draw, pil_font, result, stats)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=self.jpeg_quality)
        return buf.getvalue()

    def _next_jpeg(self, last_id: int, timeout: float) -> tuple[bytes | None, int]:
        """Block until a JPEG newer than ``last_id`` exists (or closing / timeout); return it and its id."""
        with self._jpeg_cond:
            self._jpeg_cond.wait_for(lambda: self._closing.is_set() or self._jpeg_id != last_id, timeout)
            if self._closing.is_set() or self._jpeg_id == last_id:
                return None, last_id
            return self._jpeg, self._jpeg_id

    # ------------------------------------------------------------------------------------------- connections

    def _authorised(self, handler: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> bool:
        if self._token_bytes is None:
            return True
        offered = []
        auth = handler.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            offered.append(auth[7:].strip())
        offered.extend(query.get("token", []))
        ok = False
        for candidate in offered:  # compare every candidate, in constant time each
            ok |= hmac.compare_digest(candidate.encode("utf-8", "replace"), self._token_bytes)
        return ok

    def _host_allowed(self, handler: BaseHTTPRequestHandler) -> bool:
        """Without a token, only loopback Host names (defeats DNS rebinding from a web page)."""
        if self._token_bytes is not None:
            return True
        host = handler.headers.get("Host", "").strip()
        if not host:
            return True  # not a browser: browsers always send Host
        if host.startswith("["):  # [::1]:8080
            name = host[1: host.find("]")]
        elif host.count(":") == 1:  # 127.0.0.1:8080, localhost:8080
            name = host.split(":", 1)[0]
        else:
            name = host
        return is_loopback(name)

    def _stream_slot(self, take: bool) -> bool:
        with self._conn_lock:
            if take:
                if self._streams >= self.max_clients:
                    return False
                self._streams += 1
            else:
                self._streams -= 1
            return True


# --------------------------------------------------------------------------------------------------- drawing

_font_cache: dict[int, Any] = {}


def _font(pil_font, size: int):
    if size not in _font_cache:
        try:
            _font_cache[size] = pil_font.load_default(size=size)  # Pillow ≥ 10.1: scalable
        except TypeError:
            _font_cache[size] = pil_font.load_default()
    return _font_cache[size]


def _draw_overlay(img, pil_draw, pil_font, result: Result | None, stats: dict[str, Any]) -> None:
    """Top-left box: smoothed label and score (large), the frame's top-3, FPS and latency."""
    w, h = img.size
    big = _font(pil_font, max(16, h // 14))  # readable on a 320×240 frame, not a banner on 1080p
    small = _font(pil_font, max(12, h // 24))
    if result is None:
        lines = [("waiting for results", big)]
    else:
        head = f"{result.label}  {result.score:.0%}" if result.label else "(no confident label)"
        lines = [(head, big)]
        for i, p in enumerate(result.top[:3], 1):
            lines.append((f"{i}. {p.label}  {p.score:.2f}", small))
    lat = stats["latency_ms"]
    perf = f"{stats['fps']:.1f} fps" if stats["fps"] is not None else "- fps"
    if lat["p50"] is not None:
        perf += f"   latency {lat['p50']:.0f} ms (p95 {lat['p95']:.0f})"
    lines.append((perf, small))

    draw = pil_draw.Draw(img)
    pad, gap = max(4, h // 80), max(2, h // 160)
    sizes = []
    for text, font in lines:
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        sizes.append((x1, y1))
    box_w = min(w, max(s[0] for s in sizes) + 2 * pad)
    box_h = min(h, sum(s[1] for s in sizes) + gap * (len(lines) - 1) + 2 * pad)
    # Darken under the text instead of covering the picture.
    region = img.crop((0, 0, box_w, box_h)).point(lambda v: v * 3 // 10)
    img.paste(region, (0, 0))
    y = pad
    for (text, font), (_, th) in zip(lines, sizes):
        colour = (255, 255, 0) if font is big else (255, 255, 255)
        draw.text((pad, y), text, font=font, fill=colour)
        y += th + gap


# ----------------------------------------------------------------------------------------------- statistics


def _num(x: float | None, ndigits: int = 4) -> float | None:
    if x is None:
        return None
    x = float(x)
    return round(x, ndigits) if math.isfinite(x) else None


def _rate(times: list[float]) -> float | None:
    """Events per second over a window of monotonic timestamps."""
    if len(times) < 2 or times[-1] <= times[0]:
        return None
    return round((len(times) - 1) / (times[-1] - times[0]), 2)


def _percentiles(values: list[float]) -> dict[str, float | None]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return {"p50": None, "p95": None}
    p50, p95 = np.percentile(np.asarray(finite), [50, 95])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2)}


# ------------------------------------------------------------------------------------------------ HTTP server


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # WebSink.close() joins the handlers it tracks itself
    request_queue_size = 16

    def __init__(self, address: tuple[str, int], handler, sink: WebSink) -> None:
        self.sink = sink
        host = address[0]
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can hang on a machine without
        # network; the name is not needed.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = self.server_address[1]

    def process_request(self, request, client_address) -> None:
        sink = self.sink
        with sink._conn_lock:
            full = len(sink._conns) >= sink.max_clients + _EXTRA_CONNECTIONS
        if full or sink._closing.is_set():
            try:
                request.setblocking(False)
                request.send(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 5\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        sink = self.sink
        me = threading.current_thread()
        with sink._conn_lock:
            sink._conns[me] = request
        try:
            super().process_request_thread(request, client_address)
        finally:
            with sink._conn_lock:
                sink._conns.pop(me, None)

    def handle_error(self, request, client_address) -> None:
        log.debug("web sink: error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection; the stream ends when the connection does
    server_version = "edgevision"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.sink.client_timeout  # reads and writes; a stalled client is dropped
        super().setup()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature from BaseHTTPRequestHandler
        # Never log the query string: it may hold the token.
        log.debug("web %s %s", self.client_address[0], self.path.split("?", 1)[0])

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        sink = self.server.sink
        parsed = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parsed.query)
        if not sink._host_allowed(self):
            self._send(403, b"forbidden\n", "text/plain")
            return
        if not sink._authorised(self, query):
            self._send(401, b"unauthorized\n", "text/plain", {"WWW-Authenticate": "Bearer"})
            return
        path = parsed.path
        if path in ("/", "/index.html"):
            self._send(200, _PAGE, "text/html; charset=utf-8", {"Content-Security-Policy": _PAGE_CSP})
        elif path == "/status":
            body = json.dumps(sink.status(), allow_nan=False).encode("utf-8")
            self._send(200, body, "application/json")
        elif path == "/healthz":
            self._send(200, b"ok\n", "text/plain")
        elif path == "/stream.mjpg":
            self._stream(sink)
        else:
            self._send(404, b"not found\n", "text/plain")

    def _send(self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in _COMMON_HEADERS.items():
            self.send_header(k, v)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, sink: WebSink) -> None:
        if not sink._stream_slot(take=True):
            self._send(503, b"too many viewers\n", "text/plain", {"Retry-After": "5"})
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
            for k, v in _COMMON_HEADERS.items():
                self.send_header(k, v)
            self.end_headers()
            # Each part is followed at once by the next boundary: browsers show a part when its boundary
            # arrives, so the frame is not held back until the following one.
            self.wfile.write(f"--{_BOUNDARY}\r\n".encode())
            last_id = 0
            while not sink._closing.is_set():
                jpeg, last_id = sink._next_jpeg(last_id, timeout=1.0)
                if jpeg is None:
                    if self._client_gone():  # free the slot even when no frames come to fail a write
                        break
                    continue
                head = f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                self.wfile.write(head + jpeg + f"\r\n--{_BOUNDARY}\r\n".encode())
        except OSError:  # the client went away, stalled past client_timeout, or close() shut the socket
            pass
        finally:
            sink._stream_slot(take=False)

    def _client_gone(self) -> bool:
        """After its request a stream client sends nothing more, so readable means it hung up."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True


_COMMON_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

# The page: the stream in an <img>, the status as text. Text goes in with textContent only (labels come from
# model files). The token, if any, is read from the page's own ?token= and passed on to /stream.mjpg and
# /status.
_SCRIPT = """
"use strict";
const token = new URLSearchParams(location.search).get("token");
const withToken = (path) => token === null ? path : path + "?token=" + encodeURIComponent(token);
const $ = (id) => document.getElementById(id);
const img = $("stream");
function connectStream() { img.src = withToken("stream.mjpg") + (token === null ? "?" : "&") + "t=" + Date.now(); }
img.addEventListener("error", () => {
  $("conn").textContent = "stream lost, retrying";
  setTimeout(connectStream, 1000);
});
img.addEventListener("load", () => { $("conn").textContent = "live"; });
const fmt = (x, digits) => (x === null || x === undefined) ? "-" : x.toFixed(digits);
async function poll() {
  try {
    const r = await fetch(withToken("status"), {cache: "no-store"});
    if (!r.ok) throw new Error("HTTP " + r.status);
    const s = await r.json();
    $("label").textContent = s.label === null ? "(no confident label)" : s.label;
    $("score").textContent = s.score === null ? "" : Math.round(s.score * 100) + "%";
    const top = $("top");
    top.replaceChildren(...s.top.slice(0, 3).map((p) => {
      const li = document.createElement("li");
      li.textContent = p.label + "  " + fmt(p.score, 2);
      return li;
    }));
    $("fps").textContent = fmt(s.fps, 1);
    $("p50").textContent = fmt(s.latency_ms.p50, 0);
    $("p95").textContent = fmt(s.latency_ms.p95, 0);
    $("frames").textContent = s.frames;
    $("dropped").textContent = s.dropped;
    const stale = s.age_s !== null && s.age_s > 2;
    $("stale").textContent = stale ? "(no new results for " + s.age_s.toFixed(0) + " s)" : "";
  } catch (e) {
    $("stale").textContent = "(status unavailable: " + e.message + ")";
  }
  setTimeout(poll, 500);
}
connectStream();
poll();
"""

_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgevision live</title>
<link rel="icon" href="data:,">
<style>
body {{ margin: 0; background: #111; color: #eee; font: 16px system-ui, sans-serif; }}
main {{ display: flex; flex-wrap: wrap; gap: 1em; padding: 1em; }}
img {{ max-width: 100%; height: auto; background: #222; min-width: 320px; min-height: 240px; }}
#panel {{ min-width: 16em; }}
#label {{ font-size: 2em; font-weight: bold; color: #ff0; }}
#score {{ font-size: 1.5em; margin-left: .4em; }}
dt {{ color: #aaa; }} dd {{ margin: 0 0 .4em 0; }}
</style></head>
<body><main>
<img id="stream" alt="live camera stream">
<section id="panel">
  <div><span id="label">-</span><span id="score"></span></div>
  <ol id="top"></ol>
  <dl>
    <dt>FPS</dt><dd id="fps">-</dd>
    <dt>latency p50 / p95 (ms)</dt><dd><span id="p50">-</span> / <span id="p95">-</span></dd>
    <dt>frames / dropped</dt><dd><span id="frames">0</span> / <span id="dropped">0</span></dd>
  </dl>
  <div id="conn">connecting</div><div id="stale"></div>
</section>
</main>
<script>{_SCRIPT}</script>
</body></html>
""".encode()

_PAGE_CSP = (
    "default-src 'none'; img-src 'self' data:; connect-src 'self'; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{base64.b64encode(hashlib.sha256(_SCRIPT.encode('utf-8')).digest()).decode()}'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
