"""The PostgreSQL fixture: a real server, not as root, that asks for its password; and where the
binaries are missing, a failure that says what to install."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import psycopg
import pytest
import postgres_support
from postgres_support import INSTALL_HINT, PostgresError, PostgresServer, find_bin_dir


def test_postgres_server_is_real_and_not_root(postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_server.url(), connect_timeout=10) as con:
        version = con.execute("SHOW server_version_num").fetchone()[0]
        data_dir = con.execute("SHOW data_directory").fetchone()[0]
        con.execute("CREATE TEMP TABLE t AS SELECT generate_series(1, 5) AS n")
        assert con.execute("SELECT sum(n) FROM t").fetchone()[0] == 15
    assert int(version) >= 130000
    assert Path(data_dir) == postgres_server.data_dir
    owner = (postgres_server.data_dir / "postmaster.pid").stat().st_uid
    assert owner != 0, "the server runs as root"
    assert owner == os.geteuid() or os.geteuid() == 0
    wrong = postgres_server.url().replace(postgres_server.password, "wrong")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=10)


def test_a_second_server_beside_the_first_has_its_own_port_folder_and_data(postgres_server: PostgresServer) -> None:
    """What two pytest-xdist workers do: each starts its own server, and neither sees the other's tables."""
    other = postgres_support.start(password="another-pw")
    try:
        assert other.port != postgres_server.port and other.root != postgres_server.root
        first, second = (psycopg.connect(s.url(), autocommit=True) for s in (postgres_server, other))
        with first, second:
            first.execute("CREATE TABLE only_here (n int)")
            try:
                missing = second.execute("SELECT to_regclass('only_here')").fetchone()[0]
                assert missing is None
                assert second.execute("SHOW port").fetchone()[0] == str(other.port)
            finally:
                first.execute("DROP TABLE only_here")
    finally:
        other.stop()
    assert not other.root.exists()
    with psycopg.connect(postgres_server.url(), connect_timeout=10) as con:  # the first one still serves
        assert con.execute("SELECT 1").fetchone()[0] == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another user")
def test_as_root_a_temporary_folder_the_server_user_cannot_enter_is_avoided(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI runs as root, and root's TMPDIR (or pytest's basetemp, mode 700) may be closed to `nobody`."""
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(closed))
    server = postgres_support.start()
    try:
        assert not server.root.is_relative_to(tmp_path)
        with psycopg.connect(server.url(), connect_timeout=10) as con:
            assert con.execute("SELECT 1").fetchone()[0] == 1
    finally:
        server.stop()


def test_missing_binaries_say_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(PostgresError) as raised:
        find_bin_dir(path=str(tmp_path), debian_glob=str(tmp_path / "postgresql" / "*" / "bin"))
    assert INSTALL_HINT in str(raised.value)
    assert "apt-get install -y postgresql" in str(raised.value)


def test_debian_layout_is_found_off_path(tmp_path: Path) -> None:
    for version in ("13", "15"):
        bin_dir = tmp_path / "postgresql" / version / "bin"
        bin_dir.mkdir(parents=True)
        for name in ("initdb", "pg_ctl"):
            (bin_dir / name).write_text("")
    found = find_bin_dir(path=str(tmp_path / "empty"), debian_glob=str(tmp_path / "postgresql" / "*" / "bin"))
    assert found == tmp_path / "postgresql" / "15" / "bin"
