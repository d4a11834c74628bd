"""The WHATWG event-stream decoder, alone: every parsing rule and every httpx-sse gap."""

from __future__ import annotations

import itertools
import logging
import random
import re

import pytest

from app.core.model import RawEvent
from app.core.sse import _SIMPLE_EVENT, BOM, SSEDecoder


def decode(*chunks: bytes, decoder: SSEDecoder | None = None) -> list[RawEvent]:
    decoder = decoder or SSEDecoder()
    events: list[RawEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events


def test_basic_event_with_id_and_name() -> None:
    assert decode(b"event: news\nid: 7\ndata: hello\n\n") == [
        RawEvent(event="news", data="hello", id="7")
    ]


def test_data_lines_joined_with_lf_and_last_lf_removed() -> None:
    assert decode(b"data: a\ndata:\ndata: b\n\n")[0].data == "a\n\nb"


def test_one_leading_space_stripped_only() -> None:
    assert decode(b"data:  two spaces\n\ndata:none\n\n") == [
        RawEvent(data=" two spaces"),
        RawEvent(data="none"),
    ]


def test_comments_and_unknown_fields_ignored() -> None:
    assert decode(b": ping\nfoo: bar\ndata: x\n: more\n\n") == [RawEvent(data="x")]


def test_field_without_colon_has_empty_value() -> None:
    # "data" alone adds an empty line; two of them give one LF
    assert decode(b"data\ndata\n\n") == [RawEvent(data="\n")]


def test_cr_lf_and_crlf_all_end_lines() -> None:
    assert decode(b"data: a\rdata: b\r\ndata: c\n\r\n") == [RawEvent(data="a\nb\nc")]


def test_blocks_without_data_are_not_dispatched_but_id_still_counts() -> None:
    # httpx-sse issue 35: it dispatches these as empty events
    decoder = SSEDecoder()
    assert decode(b"event: x\n\nid: 5\n\nretry: 100\n\n", decoder=decoder) == []
    assert decoder.last_event_id == "5"
    assert decoder.retry == 100
    assert decode(b"data: y\n\n", decoder=decoder) == [RawEvent(data="y", id="5")]


def test_empty_id_resets_last_event_id() -> None:
    decoder = SSEDecoder(last_event_id="9")
    assert decode(b"id\ndata: x\n\n", decoder=decoder) == [RawEvent(data="x", id="")]


def test_id_with_nul_is_ignored() -> None:
    decoder = SSEDecoder()
    assert decode(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", decoder=decoder)[1].id == "1"


@pytest.mark.parametrize(
    "value", [b" 100", b"+100", b"1_00", "１００".encode(), b"10.5", b"", b"-1", b"1e3"]
)
def test_retry_only_when_all_ascii_digits(value: bytes) -> None:
    decoder = SSEDecoder()
    decode(b"retry: " + value + b"\n\n", decoder=decoder)  # one space is stripped
    assert decoder.retry is None


def test_retry_ascii_digits_accepted() -> None:
    decoder = SSEDecoder()
    events = decode(b"retry: 2500\ndata: x\n\n", decoder=decoder)
    assert decoder.retry == 2500
    assert events[0].retry == 2500


def test_leading_bom_stripped_once_per_stream() -> None:
    decoder = SSEDecoder()
    events = decode(BOM + BOM + b"data: x\n\n", decoder=decoder)
    # the second BOM makes the first line's field name "\ufeffdata": an unknown field
    assert events == []
    decoder.start_stream()
    assert decode(BOM + b"data: y\n\n", decoder=decoder) == [RawEvent(data="y")]


def test_bom_split_across_chunks() -> None:
    assert decode(BOM[:1], BOM[1:2], BOM[2:] + b"data: x\n\n") == [RawEvent(data="x")]


def test_bom_is_not_stripped_mid_stream() -> None:
    assert decode(b"data: a\n\n", BOM + b"data: b\n\n") == [RawEvent(data="a")]


def test_always_utf8_and_invalid_bytes_become_replacement_char() -> None:
    # a charset parameter would say latin-1; the stream is UTF-8 whatever the headers say
    assert decode("data: é\n\n".encode(), b"data: \xff\xfe ok\n\n") == [
        RawEvent(data="é"),
        RawEvent(data="\ufffd\ufffd ok"),
    ]


def test_unterminated_last_event_dropped_at_end_of_stream() -> None:
    decoder = SSEDecoder()
    assert decode(b"id: 1\ndata: a\n\nid: 2\ndata: partial\n", decoder=decoder) == [
        RawEvent(data="a", id="1")
    ]
    decoder.start_stream()  # a new response: the partial event is gone, id 2 never committed
    assert decoder.last_event_id == "1"
    assert decode(b"\ndata: b\n\n", decoder=decoder) == [RawEvent(data="b", id="1")]


def test_last_event_id_kept_across_streams() -> None:
    # httpx-sse restarts its decoder with each response and loses it
    decoder = SSEDecoder()
    decode(b"id: 42\ndata: a\n\n", decoder=decoder)
    decoder.start_stream()
    assert decode(b"data: b\n\n", decoder=decoder) == [RawEvent(data="b", id="42")]


def test_trailing_cr_ends_the_line_at_once() -> None:
    # httpx-sse holds a trailing CR back until the next chunk arrives
    decoder = SSEDecoder()
    assert decode(b"data: x\r\r", decoder=decoder) == [RawEvent(data="x")]
    # and the LF of a CRLF split over two chunks is not a second line ending
    assert decode(b"data: y\r", b"\ndata: z\r", b"\n\r", b"\n", decoder=decoder) == [
        RawEvent(data="y\nz")
    ]


EVENTS = (
    "\ufeffretry: 1000\r\n: comment\r\nid: 1\r\nevent: news\r\ndata: première ligne\r\n"
    "data: 第二行 🚀\r\n\r\nid: 2\ndata:x\n\nid: 3\rdata: y\r\r"
).encode()
EXPECTED = [
    RawEvent(event="news", data="première ligne\n第二行 🚀", id="1"),
    RawEvent(data="x", id="2"),
    RawEvent(data="y", id="3"),
]


def test_every_byte_split_gives_the_same_events() -> None:
    for cut in range(len(EVENTS) + 1):
        decoder = SSEDecoder()
        events = decode(EVENTS[:cut], EVENTS[cut:], decoder=decoder)
        assert [(e.event, e.data, e.id) for e in events] == [
            (e.event, e.data, e.id) for e in EXPECTED
        ], f"split at byte {cut}"
        assert decoder.retry == 1000


def test_one_byte_at_a_time() -> None:
    events = decode(*(EVENTS[i : i + 1] for i in range(len(EVENTS))))
    assert [e.data for e in events] == [e.data for e in EXPECTED]


def test_split_inside_a_utf8_character_and_inside_crlf() -> None:
    rocket = "🚀".encode()
    assert decode(b"data: " + rocket[:2], rocket[2:] + b"\r", b"\n\r", b"\n") == [
        RawEvent(data="🚀")
    ]


def test_oversized_event_dropped_with_warning_and_memory_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    caplog.set_level(logging.WARNING)
    events = decode(b"id: 1\ndata: ok\n\nid: 2\ndata: ", decoder=decoder)
    for _ in range(1000):  # 64 KiB of one line, chunk by chunk
        events += decoder.feed(b"z" * 64)
        assert len(decoder._line) <= 100 + 16  # the cap, and room for "data: "
    events += decode(b"\n\nid: 3\ndata: after\n\n", decoder=decoder)
    assert events == [RawEvent(data="ok", id="1"), RawEvent(data="after", id="3")]
    assert decoder.dropped == 1
    assert "dropped an event larger than 100 bytes" in caplog.text


def test_oversized_event_made_of_many_lines_is_dropped() -> None:
    decoder = SSEDecoder(max_event_bytes=50)
    events = decode(b"id: 9\n" + b"data: 0123456789\n" * 10 + b"\ndata: small\n\n", decoder=decoder)
    assert events == [RawEvent(data="small", id="9")]
    assert decoder.last_event_id == "9"  # its id counts, so a resume skips it
    assert decoder.dropped == 1


def test_event_exactly_at_the_limit_is_kept() -> None:
    decoder = SSEDecoder(max_event_bytes=10)
    assert decode(b"data: 123456789\n\n", decoder=decoder) == [RawEvent(data="123456789")]


def test_only_cr_and_lf_end_lines() -> None:
    # str.splitlines() would also split on these; the stream format does not
    text = "data: a\x0bb\x0cc\x1cd\x85e\u2028f\u2029g\n\n"
    assert decode(text.encode()) == [RawEvent(data="a\x0bb\x0cc\x1cd\x85e\u2028f\u2029g")]


def test_the_cap_counts_the_data_only() -> None:
    """Not the field name, the space, the line ends: data of exactly the cap is kept, even
    arriving in pieces; LFs between data lines count; one byte more is dropped."""
    mib = 1024 * 1024
    decoder = SSEDecoder(max_event_bytes=mib)
    line = b"data: " + b"a" * mib + b"\r\n\r\n"
    pieces = [line[i : i + 4096] for i in range(0, len(line), 4096)]
    (event,) = decode(*pieces, decoder=decoder)
    assert len(event.data) == mib
    two_lines = b"data: " + b"a" * (mib // 2) + b"\ndata: " + b"b" * (mib // 2 - 1) + b"\n\n"
    (joined,) = decode(two_lines, decoder=decoder)
    assert len(joined.data) == mib
    assert decode(b"data: " + b"a" * (mib + 1) + b"\n\n", decoder=decoder) == []
    assert decode(b"data:\ndata:\n\n", decoder=SSEDecoder(max_event_bytes=1)) == [
        RawEvent(data="\n")
    ]
    assert decoder.dropped == 1


def test_default_cap_is_well_above_one_mib() -> None:
    assert SSEDecoder().max_event_bytes == 8 * 1024 * 1024


def test_memory_stays_bounded_while_a_huge_event_is_skipped() -> None:
    decoder = SSEDecoder(max_event_bytes=1000)
    events = decode(b"id: 1\ndata: a\n\nid: 2\n", decoder=decoder)
    for i in range(2000):  # 2 MB in many lines and pieces
        events += decoder.feed(b"data: " + b"y" * 500 + (b"\n" if i % 3 == 0 else b""))
        held = len(decoder._line) + sum(map(len, decoder._data))
        assert held <= 1000 + 16
    events += decode(b"\n\nid: 3\ndata: c\n\n", decoder=decoder)
    assert events == [RawEvent(data="a", id="1"), RawEvent(data="c", id="3")]
    assert decoder.dropped == 1


# ---------------------------------------------------------------------- against a reference
#
# The decoder reads the usual event (``id``/``event`` lines, one ``data`` line, a blank line, no
# CR) by one match and everything else line by line. This reference reads the whole stream the
# plain way, straight from the WHATWG rules; the decoder must agree with it on random streams
# cut at random places.

_LINE_END = re.compile(rb"\r\n|\r|\n")


def reference(
    stream: bytes, max_event_bytes: int
) -> tuple[list[tuple[str, str, str, int | None, bool]], str, int | None, int]:
    """(events as tuples with own_id, last event id, retry, dropped) of one whole response."""
    if stream.startswith(BOM):
        stream = stream[len(BOM) :]
    lines = _LINE_END.split(stream)[:-1]  # what follows the last line end is unfinished
    events: list[tuple[str, str, str, int | None, bool]] = []
    last_id, retry, dropped = "", None, 0
    data: list[bytes] = []
    event, id_buffer, own = b"", "", False
    event_retry: int | None = None
    for line in lines:
        if not line:
            last_id = id_buffer
            joined = b"\n".join(data)
            if data and len(joined) > max_event_bytes:
                dropped += 1
            elif data:
                name = event.decode("utf-8", "replace") if event else "message"
                text = joined.decode("utf-8", "replace")
                events.append((name, text, last_id, event_retry, own))
            data, event, own, event_retry = [], b"", False, None
            continue
        if line.startswith(b":"):
            continue
        field, colon, value = line.partition(b":")
        if colon and value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            event = value
        elif field == b"id" and b"\0" not in value:
            id_buffer, own = value.decode("utf-8", "replace"), True
        elif field == b"retry" and value.isdigit():
            retry = event_retry = int(value)
    return events, last_id, retry, dropped


_LINES = [
    b'data: {"id":"1","title":"T"}',
    b"data:no space",
    b"data:  two spaces",
    b"data",
    b"data: \xc3\xa9 \xe6\x97\xa5 \xff bad: colon",
    b"data: " + b"x" * 30,
    b"id: 17",
    b"id:18",
    b"id: with\x00nul",
    b"id",
    b"id:",
    b"event: news",
    b"event:",
    b"event: \xff",
    b": keepalive",
    b":",
    b"retry: 2500",
    b"retry: 1x",
    b"foo: bar",
    b"",
    b"",
    b"",
]
_ENDS = [b"\n"] * 8 + [b"\r\n", b"\r"]


def _random_stream(rng: random.Random) -> bytes:
    parts = [BOM] if rng.random() < 0.2 else []
    for _ in range(rng.randint(1, 40)):
        parts.append(rng.choice(_LINES) + rng.choice(_ENDS))
    if rng.random() < 0.5:
        parts.append(rng.choice(_LINES))  # an unfinished line
    return b"".join(parts)


def _random_cuts(rng: random.Random, stream: bytes) -> list[bytes]:
    cuts = sorted(rng.sample(range(len(stream) + 1), min(len(stream) + 1, rng.randint(0, 8))))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("seed", range(20))
def test_random_streams_cut_anywhere_decode_as_the_reference_does(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        stream = _random_stream(rng)
        limit = rng.choice([4, 12, 40, 8 * 1024 * 1024])
        expected = reference(stream, limit)
        for _ in range(3):
            decoder = SSEDecoder(max_event_bytes=limit)
            events = [
                (e.event, e.data, e.id, e.retry, e.own_id)
                for chunk in _random_cuts(rng, stream)
                for e in decoder.feed(chunk)
            ]
            got = (events, decoder.last_event_id, decoder.retry, decoder.dropped)
            assert got == expected, f"seed {seed}: {stream!r}"


def test_the_usual_events_in_one_chunk_decode_as_the_reference_does() -> None:
    stream = b"".join(
        b'event: news\nid: %d\ndata: {"n": %d}\n\n' % (i, i)
        if i % 3 == 0
        else b"id: %d\ndata: plain %d\n\n" % (i, i)
        if i % 3 == 1
        else b"data: no id\n\n"
        for i in range(300)
    )
    decoder = SSEDecoder()
    got = [(e.event, e.data, e.id, e.retry, e.own_id) for e in decoder.feed(stream)]
    assert (got, decoder.last_event_id) == reference(stream, decoder.max_event_bytes)[:2]
    assert len(got) == 300


def test_an_id_split_across_reads_still_counts_while_an_oversized_event_is_skipped() -> None:
    decoder = SSEDecoder(max_event_bytes=8)
    got = decode(
        b"data: " + b"x" * 20 + b"\nid: 12345678901", b"234567890\n\ndata: ok\n\n", decoder=decoder
    )
    assert decoder.dropped == 1
    assert got == [RawEvent(data="ok", id="12345678901234567890")]


def test_an_event_at_the_cap_keeps_an_id_split_across_reads() -> None:
    decoder = SSEDecoder(max_event_bytes=8)
    got = decode(b"data: 12345678\nid: 1234567890123456789", b"0\n\n", decoder=decoder)
    assert got == [RawEvent(data="12345678", id="12345678901234567890")]
    assert decoder.dropped == 0


# Issue 24: the pattern of the usual event has possessive quantifiers (no backtracking into a
# part that matched). The pattern as it was, with ordinary quantifiers, must match exactly the
# same bytes at every position, with the same groups.
_BACKTRACKING = re.compile(
    rb"(?:(id|event): ?([^\n\x00]*)\n)?(?:(id|event): ?([^\n\x00]*)\n)?data: ?([^\n]*)\n\n"
)
_PATTERN_LINES = [
    *_LINES,
    b"id: 1\x00",
    b"event: a\x00b",
    b"data: a\x00b",
    b"data:",
    b"data:  ",
    b"datax: y",
    b"ids: 3",
    b"event",
    b"id:  spaced",
    b"event: id: data: x",
    b"data: \r",
]


def test_possessive_pattern_is_the_backtracking_one_less_its_marks() -> None:
    assert _SIMPLE_EVENT.pattern.replace(b"*+", b"*").replace(b")?+", b")?") == (
        _BACKTRACKING.pattern
    )


@pytest.mark.parametrize("seed", range(10))
def test_the_usual_events_pattern_matches_as_the_backtracking_one(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        block = b"".join(
            rng.choice(_PATTERN_LINES) + rng.choice([b"\n", b"\n", b"\n", b"\r"])
            for _ in range(rng.randint(1, 6))
        )
        for pos in range(len(block) + 1):
            got, expected = _SIMPLE_EVENT.match(block, pos), _BACKTRACKING.match(block, pos)
            assert (got and (got.groups(), got.end())) == (
                expected and (expected.groups(), expected.end())
            ), (block, pos)
