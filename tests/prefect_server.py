"""A real Prefect server (and, where the machine allows, a throwaway PostgreSQL) for deployment tests.

Each process is started in its own process group on 127.0.0.1 with a free port and a temporary
``PREFECT_HOME``, and stopped (with its group) by ``stop``; ``alive`` says whether any of a group is left.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_group(args: list[str], env: dict, log: Path, cwd: Path | None = None) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 30) -> None:
    """Signal the process's whole group, wait, and SIGKILL the group if it does not go."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    deadline = time.monotonic() + 10
    while alive(proc) and time.monotonic() < deadline:  # children that outlive their parent (flow runs)
        time.sleep(0.2)
    if alive(proc):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def alive(proc: subprocess.Popen) -> bool:
    """Whether any process of the group ``proc`` leads is still running."""
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class PrefectServer:
    home: Path
    port: int
    env: dict
    proc: subprocess.Popen
    started: list[subprocess.Popen] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def cli(self, *args: str, cwd: Path | None = None, timeout: float = 300, check: bool = True):
        r = subprocess.run(
            [str(BIN / "prefect"), *args], env=self.env, cwd=cwd, capture_output=True, text=True, timeout=timeout
        )
        if check and r.returncode:
            raise AssertionError(f"prefect {' '.join(args)}: rc {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        return r

    def spawn(self, args: list[str], log: str, cwd: Path | None = None, **env: str) -> subprocess.Popen:
        proc = start_group(args, {**self.env, **env}, self.home / log, cwd)
        self.started.append(proc)
        return proc

    def stop(self) -> None:
        for proc in [*reversed(self.started), self.proc]:
            stop(proc)


def start_server(db_url: str | None = None, timeout: float = 180) -> PrefectServer:
    home = Path(tempfile.mkdtemp(prefix="tuneprep-prefect-server-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
        PREFECT_CLI_PROMPT="false",
        DO_NOT_TRACK="1",
    )
    if db_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = db_url
    proc = start_group(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, home / "server.log"
    )
    server = PrefectServer(home, port, env, proc)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"prefect server exited ({proc.returncode}): {(home / 'server.log').read_text()[-3000:]}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.api_url}/health", timeout=2).status_code == 200:
                return server
        if time.monotonic() > deadline:
            server.stop()
            raise TimeoutError(f"prefect server not healthy after {timeout} s")
        time.sleep(0.5)


# -- PostgreSQL ---------------------------------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The folder with initdb and pg_ctl: pg_config's bindir, Debian's /usr/lib/postgresql/N/bin, or PATH."""
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(Path(out.stdout.strip()))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).parent)
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    return None


def postgres_unavailable() -> str | None:
    """Why a throwaway PostgreSQL cannot be started here, or None when it can."""
    if postgres_bin() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed; scripts/setup_system.sh installs them "
            "(apt-get install postgresql) when run as root, which .ci/run does"
        )
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no 'postgres' user to run initdb as (PostgreSQL refuses root)"
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return "asyncpg (Prefect's PostgreSQL driver) is not installed"
    return None


@dataclass
class Postgres:
    dir: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://prefect@127.0.0.1:{self.port}/prefect"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            cmd = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in cmd)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def start_postgres() -> Postgres:
    """initdb + pg_ctl start in a temporary folder, listening on 127.0.0.1 only, trust auth; a database 'prefect'."""
    folder = Path(tempfile.mkdtemp(prefix="tuneprep-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    pg = Postgres(folder, free_port(), postgres_bin())
    data, sock = str(folder / "data"), str(folder)
    pg._run("initdb", "-D", data, "-U", "prefect", "--auth=trust", "-E", "UTF8")
    opts = f"-p {pg.port} -k {sock} -c listen_addresses=127.0.0.1"
    try:
        pg._run("pg_ctl", "-D", data, "-l", str(folder / "pg.log"), "-w", "-o", opts, "start")
        pg._run("createdb", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "prefect", "prefect")
    except subprocess.CalledProcessError:
        pg.stop()
        raise
    return pg
