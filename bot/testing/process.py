"""A `carebot run` in a child process, for the chaos benchmark and the tests that kill servers.

Its stdout and stderr go to `log_path`, appended across restarts, so a failure can show what the
server said before and after it was killed."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, nothing flushed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, as systemd stops a worker; SIGKILL when it has not ended after 30 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""
