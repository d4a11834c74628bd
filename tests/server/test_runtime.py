"""One server started and stopped on the current loop: real aiohttp on loopback, real SQLite."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.server.config import ServerConfig
from app.server.redis_broker import RedisBroker
from app.server.runtime import DEMO_USERS, Runtime, create_demo_users, make_user, open_broker
from app.server.sqlite_broker import SqliteBroker


async def test_start_serve_and_stop(tmp_path: Path) -> None:
    config = ServerConfig(data_dir=tmp_path / "srv", port=0)
    runtime = await Runtime.start(config)
    try:
        assert runtime.url == f"http://127.0.0.1:{runtime.port}" and runtime.port > 0
        assert (tmp_path / "srv" / "signing.key").exists()
        assert [u.name for u in await create_demo_users(runtime.broker)] == [
            name for name, _, _ in DEMO_USERS
        ]
        async with httpx.AsyncClient(base_url=runtime.url, timeout=10) as client:
            assert (await client.get("/healthz")).json()["status"] == "ok"
            login = {"username": "alice", "password": "demo"}
            assert (await client.post("/auth/login", json=login)).status_code == 200
    finally:
        await runtime.stop()
    assert (tmp_path / "srv" / "server.db").exists()


async def test_the_backend_follows_the_config(tmp_path: Path) -> None:
    sqlite = open_broker(ServerConfig(data_dir=tmp_path, db_path=tmp_path / "x.db"))
    redis = open_broker(ServerConfig(data_dir=tmp_path, redis_url="redis://127.0.0.1:1/0"))
    try:
        assert isinstance(sqlite, SqliteBroker) and (tmp_path / "x.db").exists()
        assert isinstance(redis, RedisBroker)  # not connected until start()
    finally:
        await sqlite.close()
        await redis.close()


def test_a_user_needs_a_name_and_a_password() -> None:
    with pytest.raises(ValueError, match="name"):
        make_user(" ", "pw")
    with pytest.raises(ValueError, match="password"):
        make_user("dave", "")
    dave = make_user("dave", "pw", ["it"], publisher=True)
    assert dave.groups == frozenset({"it"}) and dave.publisher
    assert dave.password_hash.startswith("scrypt$") and "pw" not in dave.password_hash
