"""SSE framing, byte for byte (the events' JSON is tested in test_codec.py)."""

from __future__ import annotations

import pytest

from app.server import wire


def test_retry_ping_and_named_events() -> None:
    assert wire.retry(3000) == b"retry: 3000\n\n"
    assert wire.PING == b": ping\n\n"
    assert wire.json_event({"reason": "shutdown"}, name="close") == (
        b'event: close\ndata: {"reason":"shutdown"}\n\n'
    )
    assert wire.json_event({"a": "\u00e9"}, name="connected", event_id="0") == (
        'event: connected\nid: 0\ndata: {"a":"\u00e9"}\n\n'.encode()
    )


def test_multiline_data_is_split_into_data_lines() -> None:
    assert (
        wire.event("a\nb\r\nc\rd", name="x") == b"event: x\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    )


@pytest.mark.parametrize("bad", ["a\nb", "a\rb"])
def test_names_and_ids_must_be_single_line(bad: str) -> None:
    with pytest.raises(ValueError, match="single line"):
        wire.event("x", name=bad)
    with pytest.raises(ValueError, match="single line"):
        wire.event("x", event_id=bad)
    assert not wire.valid_id(bad)


def test_an_id_with_nul_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        wire.event("x", event_id="a\0b")
    assert not wire.valid_id("a\0b") and not wire.valid_id(None) and wire.valid_id("1-0")


def test_a_chunk_is_framed_as_http11_chunked() -> None:
    assert wire.chunk(b": ping\n\n") == b"8\r\n: ping\n\n\r\n"
    assert wire.chunk(b"x" * 255) == b"ff\r\n" + b"x" * 255 + b"\r\n"


def test_the_connected_event_is_written_as_the_json_event_would_be() -> None:
    """``connected`` is written by hand on every open; byte for byte what
    ``wire.json_event`` gives, whatever the user id holds."""
    names = ["alice", "", "a\nb\rc", "é漢字😀", "\u2028\u2029", 'q"uo\\te', "\0\x1f\x7f", "</x>"]
    for user_id in names:
        for position in (None, "0", "42", "1700000000000-3", "é"):
            for replay in (False, True):
                for conn_id in ("0123456789abcdef", user_id):
                    expected = wire.json_event(
                        {"connection_id": conn_id, "user_id": user_id, "replay": replay},
                        name="connected",
                        event_id=position,
                    )
                    assert wire.connected(conn_id, user_id, replay, position) == expected
