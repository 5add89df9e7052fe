"""sendMessage's keep-alive HTTP/1.1 road (adapters/telegram/wire.py) against a real HTTP server on
loopback that answers as configured: a connection reused while alive, a new one when the server
closed the idle one, chunked and length-less answers, and a clear error (never a hang) for what is
not HTTP. The whole Telegram suite also sends every message through it to the fake Bot API."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Callable

import pytest

from adapters.telegram.wire import BotAPIWire, WireError

OK = b'{"ok":true,"result":{"message_id":7}}'


class Server:
    """Reads one request at a time per connection and writes what `answer` returns for it."""

    def __init__(self, answer: Callable[[bytes], bytes], close_after: bool = False):
        self.answer, self.close_after = answer, close_after
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                writer.write(self.answer(body))
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def plain(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(OK), OK)


@pytest.fixture
async def served() -> AsyncIterator[Callable[..., asyncio.Future[tuple[Server, BotAPIWire]]]]:
    made: list[tuple[Server, BotAPIWire]] = []

    async def make(answer: Callable[[bytes], bytes] = plain, close_after: bool = False,
                   timeout: float = 5.0) -> tuple[Server, BotAPIWire]:
        server = Server(answer, close_after)
        wire = BotAPIWire(await server.start(), timeout)
        made.append((server, wire))
        return server, wire

    yield make  # type: ignore[misc]
    for server, wire in made:
        await wire.close()
        assert server.server is not None
        server.server.close()


async def test_one_connection_carries_many_requests(served):
    server, wire = await served()
    for i in range(3):
        status, answer = await wire.post("/bot1:t/sendMessage", b'{"chat_id":%d,"text":"hi"}' % i)
        assert (status, answer) == (200, OK)
    assert server.connections == 1
    head = server.requests[0].split(b"\r\n")
    assert head[0] == b"POST /bot1:t/sendMessage HTTP/1.1"
    assert b"Content-Type: application/json" in head and server.requests[2].endswith(b'{"chat_id":2,"text":"hi"}')


async def test_a_connection_the_server_closed_is_not_reused(served):
    server, wire = await served(close_after=True)
    for _ in range(2):
        assert (await wire.post("/m", b"{}"))[0] == 200
        await asyncio.sleep(0.05)  # the server's close reaches the idle connection
    assert server.connections == 2


async def test_chunked_and_length_less_answers(served):
    def chunked(_body: bytes) -> bytes:
        return (b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\n{\"ok\"\r\n5;x=1\r\n:fals\r\n2\r\ne}\r\n0\r\n\r\n")

    _server, wire = await served(chunked)
    assert await wire.post("/m", b"{}") == (429, b'{"ok":false}')

    _server, wire = await served(lambda _b: b"HTTP/1.0 200 OK\r\n\r\n" + OK, close_after=True)
    assert await wire.post("/m", b"{}") == (200, OK)


async def test_what_is_not_http_is_an_error(served):
    _server, wire = await served(lambda _b: b"SSH-2.0-OpenSSH\r\n\r\n")
    with pytest.raises(WireError):
        await wire.post("/m", b"{}")


async def test_no_answer_times_out(served):
    _server, wire = await served(lambda _b: b"", timeout=0.2)
    with pytest.raises(TimeoutError):
        await wire.post("/m", b"{}")


async def test_nothing_listening_is_an_error():
    wire = BotAPIWire("http://127.0.0.1:9", 2.0)
    with pytest.raises(WireError):
        await wire.post("/m", b"{}")


@pytest.mark.parametrize("reply_to", [0, 42])
def test_a_text_writes_the_body_aiograms_model_would(reply_to: int) -> None:
    """render.Text's own JSON (keyboard serialised once per button set) says what aiogram's
    SendMessage says, for every shape a text takes: buttons, a topic, a doctor's name, a reply, parts."""
    import json

    from adapters.telegram.render import Text, plan
    from bot.types import Address, Button, Outbound

    buttons = tuple(Button(f"{i} 分", str(i)) for i in range(11)) + (Button("long", "x" * 80),)
    outbounds = [Outbound("say", Address("telegram", "123", "123"), text="严重程度 <0-10> & 说明", buttons=buttons),
                 Outbound("say", Address("telegram", "-1005", "77", "9", is_group=True), text="hi",
                          sender="staff:d1", sender_name="Dr <A>"),
                 Outbound("say", Address("telegram", "123", "123"), text="第一行\n" * 1500, buttons=buttons[:2])]
    for outbound in outbounds:
        calls = plan(outbound, int(outbound.address.chat_id), reply_to=reply_to)
        assert calls and all(isinstance(c, Text) for c in calls)
        for call in calls:
            model = call.method()
            assert json.loads(call.body()) == json.loads(model.model_dump_json(exclude_unset=True, exclude_none=True))
            assert call.reply_markup == model.reply_markup
        assert calls[-1].reply_markup is not None or not outbound.buttons
