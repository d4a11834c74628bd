"""The one interface: both backends implement all of it (the contract suite runs each test of
tests/server against both, through ``server_backend``)."""

from __future__ import annotations

import inspect

from app.server.broker import Broker
from app.server.redis_broker import RedisBroker
from app.server.sqlite_broker import SqliteBroker


def test_both_backends_implement_the_whole_interface() -> None:
    assert Broker.__abstractmethods__ >= {"publish", "subscribe", "list_visible", "close"}
    for backend in (SqliteBroker, RedisBroker):
        assert not inspect.isabstract(backend), backend
        for name in Broker.__abstractmethods__:
            ours, theirs = getattr(Broker, name), getattr(backend, name)
            assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(theirs), name
            assert list(inspect.signature(ours).parameters) == list(
                inspect.signature(theirs).parameters
            ), name
