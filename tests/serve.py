"""`carebot run` as a child process on a free loopback port, for the tests that need the real
server: uvicorn, its logging, signals (the chaos and no-leak tests)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

from bot.testing.process import ServerProcess, free_port  # noqa: F401 - free_port: for the tests

ROOT = Path(__file__).resolve().parent.parent
CAREBOT = ROOT / ".venv" / "bin" / "carebot"


class Served(ServerProcess):
    """One `carebot run`; its stdout and stderr go to `log_path`, appended across restarts."""

    def __init__(self, workdir: Path, database_url: str, redis_url: str = "", port: int | None = None,
                 worker_id: str = "", **env: str):
        self.workdir, self.port = workdir, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"server-{self.port}.log"
        self.env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                    "CAREBOT_SECRET": "serve-test-secret-" + "x" * 20, "CAREBOT_FLOWS": str(ROOT / "flows"),
                    "CAREBOT_CONTENT": str(ROOT / "content"), "CAREBOT_PORT": str(self.port),
                    "CAREBOT_MEDIA_DIR": str(workdir / "media"), "CAREBOT_WORKER_ID": worker_id or f"s{self.port}",
                    "CAREBOT_LOG_LEVEL": "INFO", **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Served:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([str(CAREBOT), "run", "--no-migrate"], cwd=self.workdir, env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"carebot did not get ready:\n{self.log()}")

