"""Hostile input at every HTTP and WebSocket entry point (web chat, console, health): no answer
≥ 500, no socket closed as a server error, no traceback in the log. Bounded here; the long run is
`carebot bench fuzz --requests 20000`."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from starlette.testclient import TestClient

from adapters.console import ConsoleAdapter
from adapters.webchat import WebchatAdapter
from adapters.webchat.config import WebchatConfig
from bot.app import CareBot
from bot.server import create_app
from bot.testing.fuzz import entry_points, probes, run_probe
from tests.test_webchat import settings_for


class Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)


@pytest.fixture
def served(tmp_path: Path, backend: tuple[str, str]) -> Iterator[tuple[TestClient, list[Any], Tracebacks]]:
    settings = settings_for(tmp_path, *backend)
    webchat = WebchatAdapter(settings, replace(WebchatConfig(), media_dir=tmp_path / "media",
                                               visitor_rate=(10_000, 1.0), ip_rate=(10_000, 1.0)))
    bot = CareBot.build(settings, [webchat, ConsoleAdapter(settings)])
    app = create_app(bot)
    seen = Tracebacks()
    logging.getLogger().addHandler(seen)
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as client:
        yield client, entry_points(app), seen
    logging.getLogger().removeHandler(seen)


def test_every_entry_point_survives_hostile_input(served: tuple[TestClient, list[Any], Tracebacks],
                                                  backend: tuple[str, str]) -> None:
    client, entries, seen = served
    paths = {e.path for e in entries}
    assert {"/webchat/ws", "/webchat/api/send", "/console/login", "/healthz"} <= paths  # the routes were found

    @settings(max_examples=150 if not backend[0] else 60, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(probes(entries))
    def survives(probe: Any) -> None:
        statuses = run_probe(client, probe)
        assert all(s < 500 for s in statuses), (probe, statuses)
        assert seen.records == [], (probe, [r.getMessage() for r in seen.records])

    survives()
