"""A real PostgreSQL server for tests, from the machine's own binaries (initdb, pg_ctl).

It lives in a temporary folder, listens on a free port of 127.0.0.1 only (its Unix socket in that
folder too) and asks for a password (scram-sha-256), so the URLs the tests hand around carry a
secret that must never be printed. PostgreSQL refuses to run as root, and CI runs as root: then
the server runs as `nobody` (or a `redset` system user made for it) through runuser.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline_assets.runtime.ports import free_ports

SUPERUSER = "redset"
INSTALL_HINT = (
    "install PostgreSQL's server binaries (initdb, pg_ctl): `make postgres`, which runs "
    "`apt-get install -y postgresql` on Debian/Ubuntu, or put a PostgreSQL 13+ bin folder on PATH"
)
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
START_ATTEMPTS = 3  # another process may take the free port between the check and the start


class PostgresError(RuntimeError):
    """The server could not be found, initialised or started; the message says why."""


def find_bin_dir(path: str | None = None, debian_glob: str = DEBIAN_BIN_GLOB) -> Path:
    """The folder with initdb and pg_ctl: on PATH, else Debian's newest /usr/lib/postgresql/<v>/bin."""
    found = shutil.which("initdb", path=path)
    if found and shutil.which("pg_ctl", path=str(Path(found).parent)):
        return Path(found).parent
    debian = [Path(d) for d in glob.glob(debian_glob) if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists()]
    if debian:
        return max(debian, key=lambda d: [int(n) for n in re.findall(r"\d+", d.parent.name)] or [0])
    raise PostgresError(f"no PostgreSQL server binaries on PATH or in {debian_glob}: {INSTALL_HINT}")


def server_user() -> str:
    """The account the server runs as when we are root: `nobody`, else a `redset` system user."""
    for name in ("nobody", "redset"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    made = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "redset"])
    if made.returncode not in (0, 9):  # 9: it exists, made meanwhile by another pytest-xdist worker
        raise PostgresError(f"useradd redset exited {made.returncode}: PostgreSQL cannot run as root")
    return "redset"


@dataclass
class PostgresServer:
    root: Path
    bin_dir: Path
    port: int
    password: str
    os_user: str | None  # None: runs as the current user

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _run(self, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", self.os_user, "--"] if self.os_user else []
        cmd = [*prefix, *(str(a) for a in args)]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if result.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise PostgresError(f"{' '.join(cmd[len(prefix):])} exited {result.returncode}: {result.stderr.strip()}\n{log}")
        return result

    def _start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"  # a throwaway test server
        )
        self._run(self.bin_dir / "pg_ctl", "-D", self.data_dir, "-l", self.log, "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._run(self.bin_dir / "pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "-t", "60", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _reachable_temp_dir(os_user: str | None) -> str | None:
    """The usual temporary folder, unless the server user cannot enter it (a root-only TMPDIR, or
    pytest's basetemp, mode 700): then /tmp, which every user may enter."""
    base = Path(tempfile.gettempdir()).resolve()
    if os_user and any(not folder.stat().st_mode & 0o001 for folder in (base, *base.parents)):
        return "/tmp"
    return None


def start(password: str = "s3cret-test-pw") -> PostgresServer:
    """initdb a new cluster in a temporary folder and start it on a free port; stop() removes it."""
    bin_dir = find_bin_dir()
    os_user = server_user() if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="redset-postgres-", dir=_reachable_temp_dir(os_user)))
    server = PostgresServer(root=root, bin_dir=bin_dir, port=0, password=password, os_user=os_user)
    try:
        pwfile = root / "pwfile"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        if os_user:
            entry = pwd.getpwnam(os_user)
            for path in (root, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        server._run(
            bin_dir / "initdb", "-D", server.data_dir, "-U", SUPERUSER, "--auth=scram-sha-256",
            f"--pwfile={pwfile}", "--encoding=UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        for attempt in range(START_ATTEMPTS):
            server.port = free_ports(1)[0]
            try:
                server._start()
                return server
            except PostgresError:
                if attempt == START_ATTEMPTS - 1:
                    raise
    except BaseException:
        server.stop()
        raise
    raise AssertionError("unreachable")
