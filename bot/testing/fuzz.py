"""Fuzzing every HTTP and WebSocket entry point of the ASGI app with hostile input.

The probes come from the app's own routes (so a new route is fuzzed the day it is added), with
path parameters, query values, headers (tokens, cookies, CSRF, origins, lengths) and bodies drawn
from a catalogue of what broke servers before: non-ASCII secrets, lone surrogates, integers above
2^63, deeply nested JSON, non-finite numbers, NUL bytes, invalid UTF-8, binary WebSocket frames.

Two drivers share the catalogue: `probes()` is a Hypothesis strategy (the bounded test in the
suite, which shrinks a failure to its smallest input) and `random_probe()` draws with
`random.Random` (`carebot bench fuzz --requests N`, no test dependency). `run_probe` sends one
probe through Starlette's TestClient and returns the statuses it met.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

TEXTS = ["", "x", "é", "胸口疼", "\ud800", "a\x00b", "9" * 30, "-1", "0", "1e999", "NaN", "inf", "²", "١٢٣",
         "../../etc/passwd", "%", "%ff", "\u202e", "v1.é.1.x", "v1.abc.99999999999999999999.x", "v1.vabc.1.sig",
         "a" * 5000, "null", "[]", "{}", "' OR 1=1 --", "<script>alert(1)</script>", "zh-CN", "en",
         str(2**63), str(2**64 + 1), "-" + str(2**70), "1.5", " 7 "]
NUMBERS: list[Any] = [0, -1, 1, 2**31, 2**63, 2**64 + 1, -(2**70), 1.5, 1e308, True, None]
QUERY_KEYS = ["after", "wait", "next", "status", "days", "before", "department", "priority", "sla", "mine",
              "token", "id", "x"]
HEADER_NAMES = [b"authorization", b"cookie", b"origin", b"content-type", b"accept", b"content-length", b"host",
                b"x-forwarded-for", b"accept-language"]
COOKIES = [b"carebot_console", b"carebot_console_lang", b"carebot_console_flash"]
FIELDS = ["type", "id", "text", "value", "media", "locale", "token", "after", "csrf", "staff_id", "password",
          "status", "verdict", "note", "body", "to", "department", "reason"]
FRAME_TYPES = ["hello", "send", "resume", "ping", "x", None, 7]
_PARAM = re.compile(r"\{([a-zA-Z_]+)(?::[a-z]+)?\}")


@dataclass(frozen=True)
class Probe:
    """One hostile request: HTTP (`frames` None) or a WebSocket conversation."""

    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    frames: list[str | bytes] | None = None


@dataclass(frozen=True)
class Entry:
    path: str  # with {param} placeholders
    methods: tuple[str, ...]
    websocket: bool = False


def entry_points(app: Any) -> list[Entry]:
    """Every route of the app, mounts included (the app must have started: adapters add routes)."""
    from starlette.routing import Mount, Route, WebSocketRoute

    found: list[Entry] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if isinstance(route, WebSocketRoute):
                found.append(Entry(prefix + route.path, ("GET",), websocket=True))
            elif isinstance(route, Route):
                found.append(Entry(prefix + route.path, tuple(sorted(route.methods or {"GET"}))))
            elif isinstance(route, Mount):
                inner = getattr(route.app, "routes", None)
                if inner is None and getattr(route.app, "app", None) is not None:
                    inner = getattr(route.app.app, "routes", None)  # the lazy holder around the bot's app
                walk(list(inner or []), prefix + route.path)

    walk(list(app.routes), "")
    holder = getattr(app.state, "holder", None)
    if holder is not None and holder.app is not None:
        walk(list(holder.app.routes), "")
    unique = {(e.path, e.websocket): e for e in found}
    return list(unique.values())


def fill(path: str, values: list[str]) -> str:
    from urllib.parse import quote_from_bytes

    it = iter(values)
    return _PARAM.sub(lambda m: quote_from_bytes(next(it, "x").encode("utf-8", "surrogatepass"), safe="") or "x", path)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)  # keeps lone surrogates as \ud800 escapes


def body_from(kind: int, texts: list[str], numbers: list[Any], depth: int) -> bytes:
    """A body of one of several shapes: JSON objects with hostile fields, deep nesting, bad bytes."""
    field_values: list[Any] = texts + numbers
    obj = {FIELDS[i % len(FIELDS)]: field_values[i % len(field_values)] for i in range(len(texts) + len(numbers))} \
        if field_values else {}
    shapes = [
        lambda: _json_text(obj).encode(),
        lambda: ("[" * depth + "]" * depth).encode(),
        lambda: ('{"type": "send", "id": "a", "text": ' + "[" * depth + "1" + "]" * depth + "}").encode(),
        lambda: b"\xff\xfe\xfa" + (texts[0] if texts else "").encode("utf-8", "surrogatepass"),
        lambda: "&".join(f"{FIELDS[i % len(FIELDS)]}={t}" for i, t in enumerate(texts))
        .encode("utf-8", "surrogatepass"),
        lambda: b'{"id": "n1", "text": "x", "value": 1e99999, "after": 99999999999999999999999}',
        lambda: b"",
    ]
    return shapes[kind % len(shapes)]()


def frames_from(kinds: list[Any], texts: list[str], numbers: list[Any], binary: bool, depth: int) -> list[str | bytes]:
    frames: list[str | bytes] = []
    for i, kind in enumerate(kinds):
        frame = {"type": kind, "id": texts[i % len(texts)] if texts else "m", "text": texts[-1] if texts else "",
                 "token": texts[0] if texts else "", "after": numbers[i % len(numbers)] if numbers else 0,
                 "value": texts[i % len(texts)] if texts and i % 2 else None}
        frames.append(_json_text(frame))
    if binary:
        frames.insert(len(frames) // 2, b"\x00\x01" + (texts[0] if texts else "").encode("utf-8", "surrogatepass"))
    if depth > 50:
        frames.append("[" * depth + "]" * depth)
    return frames


def _headers(pairs: list[tuple[int, str]]) -> list[tuple[bytes, bytes]]:
    out = []
    for i, text in pairs:
        name = HEADER_NAMES[i % len(HEADER_NAMES)]
        raw = text.encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")
        if name == b"authorization":
            raw = b"Bearer " + raw
        elif name == b"cookie":
            raw = COOKIES[i % len(COOKIES)] + b"=" + raw
        out.append((name, raw))
    return out


def random_probe(rng: random.Random, entries: list[Entry]) -> Probe:
    entry = rng.choice(entries)
    pick = lambda n: [rng.choice(TEXTS) if rng.random() < 0.8 else "".join(  # noqa: E731
        chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(1, 12))) for _ in range(n)]
    texts, numbers = pick(rng.randrange(1, 6)), [rng.choice(NUMBERS) for _ in range(rng.randrange(0, 3))]
    depth = rng.choice([1, 10, 1000, 100_000])
    query = [(rng.choice(QUERY_KEYS), t) for t in pick(rng.randrange(0, 3))]
    headers = _headers([(rng.randrange(100), t) for t in pick(rng.randrange(0, 4))])
    path = fill(entry.path, pick(3))
    if entry.websocket:
        kinds = [rng.choice(FRAME_TYPES) for _ in range(rng.randrange(1, 5))]
        if rng.random() < 0.7:
            kinds[0] = "hello"
        return Probe("GET", path, query, headers, frames=frames_from(kinds, texts, numbers, rng.random() < 0.4, depth))
    method = rng.choice(entry.methods) if rng.random() < 0.9 else rng.choice(["PUT", "DELETE", "PATCH"])
    return Probe(method, path, query, headers, body_from(rng.randrange(7), texts, numbers, depth))


def probes(entries: list[Entry]) -> Any:
    """The Hypothesis strategy: the same shapes, drawn (and shrunk) by Hypothesis."""
    from hypothesis import strategies as st

    text = st.one_of(st.sampled_from(TEXTS), st.text(max_size=20))  # st.text includes lone surrogates
    texts = st.lists(text, min_size=1, max_size=5)
    numbers = st.lists(st.one_of(st.sampled_from(NUMBERS), st.integers()), max_size=3)
    depth = st.sampled_from([1, 10, 1000, 100_000])

    @st.composite
    def probe(draw: Any) -> Probe:
        entry = draw(st.sampled_from(entries))
        ts, ns, d = draw(texts), draw(numbers), draw(depth)
        query = [(draw(st.sampled_from(QUERY_KEYS)), t) for t in draw(st.lists(text, max_size=3))]
        headers = _headers(draw(st.lists(st.tuples(st.integers(0, 99), text), max_size=4)))
        path = fill(entry.path, draw(st.lists(text, min_size=3, max_size=3)))
        if entry.websocket:
            kinds = draw(st.lists(st.sampled_from(FRAME_TYPES), min_size=1, max_size=4))
            return Probe("GET", path, query, headers, frames=frames_from(kinds, ts, ns, draw(st.booleans()), d))
        method = draw(st.sampled_from(entry.methods + ("PUT", "DELETE")))
        return Probe(method, path, query, headers, body_from(draw(st.integers(0, 6)), ts, ns, d))

    return probe()


def run_probe(client: Any, probe: Probe) -> list[int]:
    """Send the probe; the HTTP status, or for a socket the close codes met (1011 = server error,
    reported as 500)."""
    from starlette.websockets import WebSocketDisconnect

    from urllib.parse import quote_from_bytes

    headers = [(k, v) for k, v in probe.headers if k not in (b"host", b"content-length")]
    query = "&".join(f"{k}={quote_from_bytes(v.encode('utf-8', 'surrogatepass'), safe='')}" for k, v in probe.query)
    url = probe.path + (f"?{query}" if query else "")
    if probe.frames is None:
        response = client.request(probe.method, url, headers=headers, content=probe.body, follow_redirects=False)
        return [response.status_code]
    statuses: list[int] = []
    try:
        with client.websocket_connect(url, headers=dict(headers)) as ws:
            for frame in probe.frames:
                if isinstance(frame, bytes):
                    ws.send_bytes(frame)
                else:
                    ws.send_text(frame)
            ws.send_text('{"type": "ping"}')
            for _ in range(20):
                message = ws.receive()
                if message["type"] == "websocket.close":
                    statuses.append(500 if message.get("code") == 1011 else 200)
                    break
                if '"pong"' in (message.get("text") or ""):
                    break
    except WebSocketDisconnect as exc:
        statuses.append(500 if exc.code == 1011 else 200)
    return statuses or [200]


def run_fuzz_bench(app: Any, requests: int, seed: int = 1) -> dict[str, Any]:
    """`carebot bench fuzz`: `requests` random probes through the app in-process. Reports answers
    ≥ 500, log records with a traceback or at ERROR, and the resident memory after the first tenth
    and at the end (flat: no per-request growth)."""
    import logging
    import time

    from starlette.testclient import TestClient

    class Count(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.DEBUG)
            self.n = 0

        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info or record.levelno >= logging.ERROR:
                self.n += 1

    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            import os
            return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)

    rng = random.Random(seed)
    errors = Count()
    logging.getLogger().addHandler(errors)
    over_500 = sent = 0
    rss_warm = 0.0
    started = time.perf_counter()
    try:
        with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as client:
            entries = entry_points(app)
            for i in range(requests):
                statuses = run_probe(client, random_probe(rng, entries))
                sent += 1
                over_500 += sum(s >= 500 for s in statuses)
                if i == requests // 10:
                    rss_warm = rss_mb()
    finally:
        logging.getLogger().removeHandler(errors)
    return {"requests": sent, "entry_points": len(entries), "responses_5xx": over_500,
            "error_logs": errors.n, "rss_mb_after_10pct": rss_warm, "rss_mb_end": rss_mb(),
            "seconds": round(time.perf_counter() - started, 1), "seed": seed}
