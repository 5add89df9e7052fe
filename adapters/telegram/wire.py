"""The road of `sendMessage`, most of what carebot sends: a keep-alive HTTP/1.1 client that does one
thing — POST a JSON body to the Bot API and read the answer.

A general client (aiohttp under aiogram) builds per request a request object, a header multidict,
a response object, a timer and trace hooks; on the benchmark's road that was the largest single
cost per reply. This one writes one prepared head and the body on a pooled connection and reads the
status line, the length and the body. Connections are kept alive and reused (at most `limit` open,
like aiohttp's default); one the server closed while idle is never reused. HTTPS through Python's
default TLS context (certificates verified). Every other Bot API call, and every call when the
session goes through a proxy, stays on aiogram's session.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class WireError(Exception):
    """The exchange failed or the answer was not HTTP/1.1 as expected (a network error to the caller)."""


class BotAPIWire:
    def __init__(self, base_url: str, timeout: float, limit: int = 100):
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if url.scheme == "https" else None
        self.timeout = timeout
        host = self.host if url.port is None else f"{self.host}:{url.port}"
        self._host_header = f"Host: {host}\r\nContent-Type: application/json\r\nContent-Length: ".encode()
        self._idle: list[Connection] = []
        self._slots = asyncio.Semaphore(limit)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST `body` (JSON) to `path`; the status and the body of the answer. Raises `WireError`,
        or `TimeoutError` past `timeout` seconds."""
        async with self._slots:
            async with asyncio.timeout(self.timeout):
                connection = self._take()
                if connection is None:
                    try:
                        connection = await asyncio.open_connection(self.host, self.port, ssl=self.ssl)
                    except OSError as exc:
                        raise WireError(f"connect: {exc}") from exc
                try:
                    status, answer, keep = await self._exchange(connection, path, body)
                except BaseException:
                    connection[1].close()
                    raise
            if keep:
                self._idle.append(connection)
            else:
                connection[1].close()
            return status, answer

    def _take(self) -> Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection[0].at_eof() and not connection[1].is_closing():
                return connection
            connection[1].close()  # closed by the server while idle
        return None

    async def _exchange(self, connection: Connection, path: str, body: bytes) -> tuple[int, bytes, bool]:
        reader, writer = connection
        writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\n" + self._host_header + str(len(body)).encode()
                     + b"\r\n\r\n" + body)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            if not lines[0].startswith(b"HTTP/1.") or len(lines[0]) < 12:
                raise WireError(f"not an HTTP/1.x answer: {lines[0][:40]!r}")
            status = int(lines[0][9:12])
            length, chunked, keep = -1, False, lines[0].startswith(b"HTTP/1.1")
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif name == b"connection":
                    keep = value.strip().lower() == b"keep-alive" or (keep and value.strip().lower() != b"close")
            if chunked:
                answer = await _chunks(reader)
            elif length >= 0:
                answer = await reader.readexactly(length)
            else:  # no length: the body runs to the end of the connection
                answer, keep = await reader.read(), False
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise WireError(f"{type(exc).__name__}: {exc}") from exc
        return status, answer, keep

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _reader, writer in idle:
            writer.close()


async def _chunks(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
