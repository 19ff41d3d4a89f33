"""The private PostgreSQL server the SQL backend tests run against."""

from __future__ import annotations

import math
import struct
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.postgres


def test_fresh_database_stores_and_reads_back(postgres_url: str) -> None:
    stale_marker = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
    rows = [(1, "up", 1.5), (2, "stale", stale_marker), (3, "negative zero", -0.0)]
    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        conn.execute("CREATE TABLE samples (id int PRIMARY KEY, name text NOT NULL, value float8)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO samples VALUES (%s, %s, %s)", rows)
        conn.commit()
    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        got = conn.execute("SELECT id, name, value FROM samples ORDER BY id").fetchall()
    assert [row[:2] for row in got] == [row[:2] for row in rows]
    assert got[0][2] == 1.5
    assert math.isnan(got[1][2])
    assert math.copysign(1.0, got[2][2]) == -1.0


def test_server_is_private_and_durable(postgres_server: PostgresServer, postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    assert (parts.scheme, parts.hostname, parts.port) == ("postgresql", "127.0.0.1", postgres_server.port)
    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        settings = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]
            for name in ("listen_addresses", "fsync", "synchronous_commit", "full_page_writes")
        }
        databases = [
            row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'test%'")
        ]
    assert settings == {
        "listen_addresses": "127.0.0.1",
        "fsync": "on",
        "synchronous_commit": "on",
        "full_page_writes": "on",
    }
    # Databases of earlier tests were dropped.
    assert databases == [parts.path.lstrip("/")]


def test_password_is_required(postgres_server: PostgresServer) -> None:
    without_password = f"postgresql://postgres@127.0.0.1:{postgres_server.port}/postgres"
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(without_password, connect_timeout=5)
