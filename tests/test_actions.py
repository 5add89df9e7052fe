"""Actions: Python callables, rasa-sdk actions in-process, and a real rasa-sdk action server."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from bot.actions.base import ActionContext, ActionMessage, ActionResult
from bot.actions.registry import ActionRegistry, default_registry
from bot.types import Address

REPO = Path(__file__).resolve().parent.parent
RASA_MODULE = "tests.rasa_actions.actions"
PHONE = "13800138000"  # personal data that must never reach an error or a log line


@pytest.fixture
def rasa_module(monkeypatch: pytest.MonkeyPatch) -> str:
    """The rasa-sdk actions module's name, importable under plain `pytest` too (which, unlike
    `python -m pytest`, does not put the repository root on sys.path)."""
    monkeypatch.syspath_prepend(str(REPO))
    return RASA_MODULE


def make_ctx(name: str, slots: dict[str, Any] | None = None, latest_text: str = "") -> ActionContext:
    address = Address(channel="telegram", chat_id="42", user_id="42")
    return ActionContext(
        name=name,
        args={"currency": "CNY"},
        slots=dict(slots or {}),
        address=address,
        conversation_id=address.conversation_id,
        locale="en",
        now=datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc),
        latest_text=latest_text,
    )


# ---------------------------------------------------------------------------------------------
# Python callables


async def test_sync_callable_returning_action_result() -> None:
    reg = ActionRegistry()

    @reg.action("lookup_price")
    def lookup_price(ctx: ActionContext) -> ActionResult:
        price = {"cardiology": 120}[ctx.slots["department"]]
        return ActionResult(slots={"price": price, "currency": ctx.args["currency"]})

    result = await reg.run("lookup_price", make_ctx("lookup_price", {"department": "cardiology"}))

    assert result == ActionResult(slots={"price": 120, "currency": "CNY"})
    assert lookup_price(make_ctx("x", {"department": "cardiology"})).slots["price"] == 120  # decorator returns f


async def test_async_callable_with_dict_shorthand() -> None:
    reg = ActionRegistry()

    async def check_quota(ctx: ActionContext) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {
            "slots": {"quota_left": 2},
            "messages": [{"key": "quota.left", "vars": {"left": 2}}, ActionMessage(text="See you soon.")],
        }

    reg.register("check_quota", check_quota)
    result = await reg.run("check_quota", make_ctx("check_quota"))

    assert result.ok
    assert result.slots == {"quota_left": 2}
    assert result.messages == [ActionMessage(key="quota.left", vars={"left": 2}), ActionMessage(text="See you soon.")]


async def test_callable_returning_none_is_an_empty_success() -> None:
    reg = ActionRegistry()
    reg.register("noop", lambda ctx: None)

    assert await reg.run("noop", make_ctx("noop")) == ActionResult()


async def test_raising_action_fails_without_personal_data(caplog: pytest.LogCaptureFixture) -> None:
    reg = ActionRegistry()

    @reg.action("book")
    def book(ctx: ActionContext) -> None:
        raise ValueError(f"no patient with phone {ctx.slots['phone']}")

    ctx = make_ctx("book", {"phone": PHONE}, latest_text=f"my phone is {PHONE}")
    with caplog.at_level(logging.DEBUG, logger="carebot"):
        result = await reg.run("book", ctx)

    assert not result.ok
    assert result.error.startswith("raised ValueError at test_actions.py:")
    assert PHONE not in result.error
    assert [r.getMessage() for r in caplog.records] == [
        f"action book failed in conversation {ctx.conversation_id}: {result.error}"
    ]


async def test_slow_async_action_times_out() -> None:
    reg = ActionRegistry(timeout=0.05)

    async def slow(ctx: ActionContext) -> None:
        await asyncio.sleep(5)

    reg.register("slow", slow)
    result = await reg.run("slow", make_ctx("slow"))

    assert result == ActionResult(ok=False, error="timed out after 0.05s")


async def test_blocking_sync_action_times_out_on_time() -> None:
    reg = ActionRegistry(timeout=0.05)
    reg.register("blocking", lambda ctx: time.sleep(0.5))

    started = time.monotonic()
    result = await reg.run("blocking", make_ctx("blocking"))

    assert result.error == "timed out after 0.05s"
    assert time.monotonic() - started < 0.4


async def test_an_actions_own_timeout_error_is_not_reported_as_ours() -> None:
    reg = ActionRegistry()

    async def upstream_timeout(ctx: ActionContext) -> None:
        raise TimeoutError("hospital system did not answer")

    reg.register("upstream", upstream_timeout)
    result = await reg.run("upstream", make_ctx("upstream"))

    assert result.error.startswith("raised TimeoutError at ")


async def test_unknown_action_without_remote_endpoint() -> None:
    result = await ActionRegistry().run("nope", make_ctx("nope"))

    assert result == ActionResult(ok=False, error="unknown action")


@pytest.mark.parametrize(
    ("returned", "error"),
    [
        ("price is 120", "returned str, expected ActionResult, dict or None"),
        ({"slot": {"price": 1}}, "result has unknown keys ['slot']; valid: ['error', 'messages', 'ok', 'slots']"),
        ({"messages": [{"txt": "hi"}]}, "message has unknown keys; valid: ['buttons', 'image', 'key', 'text', 'vars']"),
    ],
)
async def test_bad_return_values_fail_with_a_readable_reason(returned: Any, error: str) -> None:
    reg = ActionRegistry()
    reg.register("bad", lambda ctx: returned)

    assert await reg.run("bad", make_ctx("bad")) == ActionResult(ok=False, error=error)


def test_register_rejects_a_second_target_under_a_taken_name() -> None:
    reg = ActionRegistry()

    def first(ctx: ActionContext) -> None: ...

    def second(ctx: ActionContext) -> None: ...

    reg.register("x", first)
    reg.register("x", first)  # the same target again is fine (a module imported twice)
    with pytest.raises(ValueError, match="'x' is already registered by test_actions"):
        reg.register("x", second)
    with pytest.raises(TypeError, match="expected a callable"):
        reg.register("y", 42)
    assert reg.names() == ["x"]


def test_load_modules_picks_up_decorated_functions_and_rasa_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rasa_module: str
) -> None:
    package = tmp_path / "clinic_actions"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "pricing.py").write_text(
        "from bot.actions.registry import action\n"
        "from rasa_sdk import Action\n\n"
        "@action('clinic_price')\n"
        "def clinic_price(ctx):\n"
        "    return {'slots': {'price': 99}}\n\n"
        "class DepartmentAction(Action):  # a base class without a name\n"
        "    pass\n\n"
        "class ActionOpeningHours(DepartmentAction):\n"
        "    def name(self):\n"
        "        return 'action_opening_hours'\n\n"
        "    def run(self, dispatcher, tracker, domain):\n"
        "        return []\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    reg = ActionRegistry()
    reg.load_modules(["clinic_actions", rasa_module])
    reg.load_modules(["clinic_actions"])  # idempotent

    assert reg.names() == [
        "action_broken",
        "action_check_quota",
        "action_lookup_price",
        "action_opening_hours",
        "action_slow_lookup",
        "clinic_price",
    ]
    assert "clinic_price" in default_registry.names()  # the decorator registered it there first


def test_importing_the_registry_does_not_import_rasa_sdk() -> None:
    code = "import sys, bot.actions.registry; print('rasa_sdk' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------
# rasa-sdk actions: in-process and on a real action server give the same results


@pytest.fixture(scope="module")
def rasa_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real rasa-sdk action server on loopback serving tests/rasa_actions."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = tmp_path_factory.mktemp("rasa_server") / "server.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "rasa_server.py"), str(port)],
            cwd=REPO,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"rasa action server exited {proc.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=1).json() == {"status": "ok"}:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"rasa action server did not answer /health:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(params=["in_process", "remote"])
async def rasa_registry(request: pytest.FixtureRequest) -> Any:
    if request.param == "in_process":
        reg = ActionRegistry()
        reg.load_modules([request.getfixturevalue("rasa_module")])
    else:
        reg = ActionRegistry(remote_endpoint=request.getfixturevalue("rasa_server"))
    yield reg
    await reg.aclose()


async def test_rasa_action_sets_slots_and_says_text(rasa_registry: ActionRegistry) -> None:
    ctx = make_ctx("action_lookup_price", {"department": "cardiology", "price": None})

    result = await rasa_registry.run("action_lookup_price", ctx)

    # FollowupAction means nothing to carebot and is skipped
    assert result == ActionResult(
        slots={"price": 120}, messages=[ActionMessage(text="A cardiology visit costs 120 yuan.")]
    )


async def test_async_rasa_action_with_responses_buttons_and_tracker(rasa_registry: ActionRegistry) -> None:
    ctx = make_ctx("action_check_quota", latest_text="tomorrow")

    result = await rasa_registry.run("action_check_quota", ctx)

    assert result.ok
    assert result.slots == {"quota_left": 3, "asked_by": ctx.conversation_id}
    assert result.messages == [
        ActionMessage(
            key="rasa.utter_quota",
            buttons=[{"title": "Book", "payload": "/book"}, {"title": "Later", "payload": "/later"}],
            vars={"left": 3},
        ),
        ActionMessage(key="quota.footer", image="https://example.org/map.png"),
    ]


async def test_raising_rasa_action_fails_without_personal_data(
    rasa_registry: ActionRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = make_ctx("action_broken", {"phone": PHONE})

    with caplog.at_level(logging.DEBUG, logger="carebot"):
        result = await rasa_registry.run("action_broken", ctx)

    assert not result.ok
    expected = "action server HTTP 500" if rasa_registry.remote_endpoint else "raised RuntimeError at actions.py:"
    assert result.error.startswith(expected)
    assert PHONE not in caplog.text


async def test_slow_rasa_action_times_out(rasa_registry: ActionRegistry) -> None:
    rasa_registry.timeout = 0.2

    result = await rasa_registry.run("action_slow_lookup", make_ctx("action_slow_lookup"))

    assert not result.ok
    assert result.error in {"timed out after 0.2s", "action server timed out"}


async def test_unknown_action_on_the_remote_server(rasa_server: str) -> None:
    reg = ActionRegistry(remote_endpoint=rasa_server)

    result = await reg.run("action_does_not_exist", make_ctx("action_does_not_exist"))
    await reg.aclose()

    assert result == ActionResult(ok=False, error="unknown action")


async def test_local_actions_take_precedence_over_the_remote_server(rasa_server: str) -> None:
    reg = ActionRegistry(remote_endpoint=rasa_server)
    reg.register("action_lookup_price", lambda ctx: {"slots": {"price": 1}})

    result = await reg.run("action_lookup_price", make_ctx("action_lookup_price", {"department": "cardiology"}))
    await reg.aclose()

    assert result.slots == {"price": 1}
    assert reg.names() == ["action_lookup_price"]  # remote names are not listed


async def test_wrong_remote_url_and_unreachable_server(rasa_server: str) -> None:
    wrong_path = ActionRegistry(remote_endpoint=f"{rasa_server}/api")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    unreachable = ActionRegistry(remote_endpoint=f"http://127.0.0.1:{closed_port}")

    wrong = await wrong_path.run("action_lookup_price", make_ctx("action_lookup_price"))
    down = await unreachable.run("action_lookup_price", make_ctx("action_lookup_price"))
    await wrong_path.aclose()
    await unreachable.aclose()

    # rasa-sdk's catch-all exception handler turns Sanic's 404 for an unknown path into a 500
    assert wrong == ActionResult(ok=False, error="action server HTTP 500")
    assert down == ActionResult(ok=False, error="action server unreachable (ConnectError)")
