"""A real redis-server for the gateway's Redis tests, on a free port, killed and restarted at will."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from sn1.testing import free_port, wait_for_port


def need_redis_server() -> str:
    path = shutil.which("redis-server")
    if path is None:
        pytest.skip("redis-server is not installed (`make test` installs it: apt-get install -y redis-server)")
    return path


class RedisServer:
    """``persist``: an append-only file (appendonly yes, fsync every second), as production should run."""

    def __init__(self, folder: Path, *, persist: bool = False):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.persist = persist
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [need_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "everysec"] if self.persist else ["--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=open(self.folder / "redis.log", "a"), stderr=subprocess.STDOUT)
        wait_for_port(self.port, timeout=30, proc=self.proc)

    def kill(self) -> None:
        """SIGKILL: Redis lost mid-run, no chance to save anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
