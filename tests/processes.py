"""Real service processes for the fault and backup tests: a Redis server and a PostgreSQL cluster of
their own, on free loopback ports, stopped and restarted at will, never the shared ones (6379/5432).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, timeout: float = 15, up: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            reachable = sock.connect_ex(("127.0.0.1", port)) == 0
        if reachable == up:
            return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} still {'closed' if up else 'open'} after {timeout}s")


class RedisServer:
    """`redis-server` without persistence: stopping it loses its data, as a crashed cache would."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        wait_for_port(self.port, up=False)


def _as_postgres(argv: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class PostgresCluster:
    """A throwaway PostgreSQL cluster (initdb) in a temporary folder of its own (readable by the
    postgres user, which pytest's private tmp_path is not), trust auth on 127.0.0.1."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="vcp-pg-"))
        self.data = self.root / "data"
        self.port = free_port()

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(_as_postgres(list(argv)), check=True, capture_output=True, text=True, **kwargs)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--no-sync", "--encoding=UTF8", "--locale=C",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                  "-o", options, "-w", "-t", "30", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def restart(self) -> None:
        """`-m fast`: every session is terminated, open transactions roll back, as in a crash."""
        self.stop("fast")
        self.start()

    def sql(self, statement: str, database: str = "postgres") -> str:
        return subprocess.run(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
             "-U", "postgres", "-d", database, "-c", statement],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


BASE_DIR = Path(__file__).resolve().parent.parent


def manage(*argv: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    """`manage.py` in a process of its own, with the environment of the deployment under test."""
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *argv],
        cwd=BASE_DIR, env=env, check=check, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


class PortalServer:
    """The portal under gunicorn (by default one worker, several threads) on a free loopback port,
    with the production gunicorn hooks (portal/gunicorn_config.py)."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.env = env
        self.log = log
        self.args = args or ("--workers", "1", "--worker-class", "gthread", "--threads", "4")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        python = Path(sys.executable)
        self.proc = subprocess.Popen(
            [str(python), "-m", "gunicorn", "portal.wsgi", "-c", str(BASE_DIR / "portal" / "gunicorn_config.py"),
             "-b", f"127.0.0.1:{self.port}", "--timeout", "60", *self.args],
            cwd=BASE_DIR, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_for_port(self.port, timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]
