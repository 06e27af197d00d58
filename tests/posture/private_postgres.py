"""A throwaway PostgreSQL cluster (initdb) on a free port, which a test may really restart.

The shared server on 5432 serves every other test and is never restarted. Debian's binaries
under /usr/lib/postgresql/<version>/bin are used; as root they run as the `postgres` user, as
initdb refuses root.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.posture.faults import free_port


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class PrivatePostgres:
    def __init__(self) -> None:
        self.port = free_port()
        # Not pytest's tmp_path: its parents are private to root, and the server runs as postgres.
        self.workdir = Path(tempfile.mkdtemp(prefix="arc-pg-"))
        self.data = self.workdir / "data"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @staticmethod
    def available() -> str | None:
        """Why a private cluster cannot be made here, or None."""
        missing = [name for name in ("initdb", "pg_ctl") if _bin(name) is None]
        return f"PostgreSQL server binaries ({', '.join(missing)})" if missing else None

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self.as_postgres, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}{done.stderr}"

    def start(self) -> None:
        if self.as_postgres:
            shutil.chown(self.workdir, "postgres", "postgres")
        self._run(str(_bin("initdb")), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.workdir} -c fsync=off"
        self._run(str(_bin("pg_ctl")), "-D", str(self.data), "-l", str(self.workdir / "server.log"), "-w", "-o", options, "start")
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE arc")

    def restart(self) -> None:
        """A fast shutdown and a start, as an operator's or a package upgrade's restart does: every
        session is terminated, new connections are refused until the server is back."""
        self._run(str(_bin("pg_ctl")), "-D", str(self.data), "-l", str(self.workdir / "server.log"), "-m", "fast", "-w", "restart")

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run([*self.as_postgres, str(_bin("pg_ctl")), "-D", str(self.data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def url(self, database: str = "arc") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def count(self, sql: str, *params: object) -> int:
        with psycopg.connect(self.url()) as conn:
            row = conn.execute(sql, params).fetchone()
            return int(row[0]) if row else 0
