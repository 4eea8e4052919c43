"""tphd checks its database before changing anything: a file that is not a
tphd database is refused untouched (no WAL switch, no table added), a damaged
one is refused with what can still be read, a tphd database from before the
application id is accepted and stamped."""
import hashlib
import os
import sqlite3
import subprocess

import pytest

from tphd_wire import ACK, TPHD, Daemon, assert_clean_stop, simple_trace

pytestmark = pytest.mark.skipif(not os.path.exists(TPHD), reason=f"{TPHD} not built")

APP_ID = 0x54504844  # "TPHD"


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_to_exit(d, timeout=30):
    """Starts d expecting it to refuse; returns its exit status."""
    d.start(wait=False)
    return d.proc.wait(timeout)


def test_foreign_sqlite_file_is_refused_untouched(tmp_path):
    d = Daemon(TPHD, tmp_path)
    os.makedirs(os.path.dirname(d.db), mode=0o700)
    con = sqlite3.connect(d.db)
    con.execute("CREATE TABLE users (name TEXT, password TEXT)")
    con.execute("INSERT INTO users VALUES ('alice', 'secret')")
    con.commit()
    con.close()
    before = digest(d.db)
    assert run_to_exit(d) == 1
    assert (f"tphd: cannot open the database {d.db}: {d.db} is not a tphd database "
            f"(application_id 0, user_version 0, 1 tables: users); tphd leaves it untouched: "
            f"use another --db\n") in d.read_log()
    assert digest(d.db) == before
    assert not os.path.exists(d.db + "-wal")
    con = sqlite3.connect(d.db)
    assert con.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert con.execute("SELECT name FROM sqlite_schema").fetchall() == [("users",)]
    con.close()


def test_file_that_is_no_database_is_refused_untouched(tmp_path):
    d = Daemon(TPHD, tmp_path)
    os.makedirs(os.path.dirname(d.db), mode=0o700)
    with open(d.db, "wb") as f:
        f.write(b"not a database\n" * 1000)
    before = digest(d.db)
    assert run_to_exit(d) == 1
    assert "file is not a database; tphd leaves it untouched: use another --db\n" in d.read_log()
    assert digest(d.db) == before


def fill(d, n=30):
    with d.connect() as c:
        for k in range(n):
            ev = simple_trace(c, f"c{k:031x}", label=f"t{k}" + "x" * 3000)
            assert c.recv()[0] == ACK


def test_database_with_overwritten_pages_is_refused_with_what_is_readable(tmp_path):
    d = Daemon(TPHD, tmp_path).start()
    fill(d)
    assert_clean_stop(d)
    con = sqlite3.connect(d.db)
    page = con.execute("PRAGMA page_size").fetchone()[0]
    npages = con.execute("PRAGMA page_count").fetchone()[0]
    con.close()
    assert npages >= 8
    # Three pages in the middle of the file, overwritten as a failing disk or
    # a stray write would.
    with open(d.db, "r+b") as f:
        for p in (npages // 2, npages // 2 + 1, npages - 1):
            f.seek(p * page)
            f.write(b"\x5a" * page)
    before = digest(d.db)
    assert run_to_exit(d) == 1
    log = d.read_log()
    assert f"tphd: cannot open the database {d.db}: {d.db} is damaged (SQLite's quick_check: " \
        in log, log
    assert ("tphd does not serve a damaged database: stop here, copy what you need "
            f"(sqlite3 {d.db} .recover), then move the file aside and start again\n") in log
    assert digest(d.db) == before


def test_tphd_database_without_application_id_is_accepted_and_stamped(tmp_path):
    d = Daemon(TPHD, tmp_path).start()
    fill(d, 2)
    assert_clean_stop(d)
    con = sqlite3.connect(d.db)
    assert con.execute("PRAGMA application_id").fetchone() == (APP_ID,)
    con.execute("PRAGMA application_id=0")  # as an older tphd left it
    con.commit()
    con.close()
    d.start()
    with d.connect() as c:
        assert c.qjson("status")["traces"] == 2
    assert_clean_stop(d)
    con = sqlite3.connect(d.db)
    assert con.execute("PRAGMA application_id").fetchone() == (APP_ID,)
    con.close()
