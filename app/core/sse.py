"""An incremental Server-Sent Events decoder that follows the WHATWG HTML rules to the letter.

It works on raw bytes, chunk by chunk, however the network splits them, and keeps the last
event id across responses (call :meth:`SSEDecoder.start_stream` for each new response).

Why not httpx-sse's decoder (0.4.3): it restarts with each response, so the last event id is
lost on reconnect; it dispatches blocks holding only ``event:``/``id:``/``retry:`` as empty
events; it keeps a leading BOM and decodes with the response's ``charset``; its ``retry`` parser
is ``int()``, which accepts `` 100``, ``+100``, ``1_00`` and full-width digits; and it holds a
trailing CR back until the next chunk. Here:

- the stream is UTF-8 whatever the headers say; invalid bytes become U+FFFD; one leading BOM of
  each response is stripped;
- CR, LF and CRLF each end a line, and a CR ends its line at once (a following LF is skipped,
  even when it comes in the next chunk);
- lines starting with ``:`` are comments; a line without a colon is a field with an empty value;
  one leading space of the value is stripped;
- ``data`` lines are joined with LF; an event is dispatched only on a blank line and only when it
  has data; the ``id`` updates the last event id even for a block without data;
- an event's ``id`` is the last event id (inherited when its block had no ``id:`` line, as the
  rules say: that is the resume position); ``own_id`` tells whether its own block carried one,
  for the identity of an event (de-duplication) that must never use an inherited id;
- an ``id`` holding NUL is ignored; ``retry`` counts only when it is all ASCII digits;
- the unterminated last event of a response is dropped;
- an event whose data (the UTF-8 bytes of the joined ``data`` lines, LFs between them included;
  not the field names, the spaces after the colons or the line ends) is over
  ``max_event_bytes`` is dropped with a warning, and while it is skipped the decoder holds at
  most about ``max_event_bytes`` of it in memory. Its ``id`` still counts, so a resume does not
  ask for it again and again. A line of another field is held whole while it arrives, up to
  ``max_event_bytes`` (beyond that the line is ignored). The default, 8 MiB, takes a 1 MiB
  announcement even with every character escaped in its JSON.

Lines are split on bytes (CR and LF never occur inside a UTF-8 sequence), so a character split
across chunks is decoded whole, and sizes are real byte counts.
"""

from __future__ import annotations

import logging
import re

from app.core.model import RawEvent

log = logging.getLogger(__name__)

BOM = b"\xef\xbb\xbf"
DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024
# room for a field name, its colon and space on a line still arriving, above the data allowed
_LINE_SLACK = 16
_CR, _LF = 0x0D, 0x0A
#: the usual event, whole: up to two ``id``/``event`` lines (any order), one ``data`` line and
#: the blank line that ends it (no CR, no NUL in the ``id``/``event`` lines). Such blocks are
#: decoded by one match; anything else goes line by line (:meth:`SSEDecoder._process`), with
#: the same result. The quantifiers are possessive (``?+``, ``*+``): each part can match a
#: line in one way only, so giving a part back never lets the rest match, and the engine is
#: spared trying (0.43 against 0.48 µs a match on the server's event).
_SIMPLE_EVENT = re.compile(
    rb"(?:(id|event): ?([^\n\x00]*+)\n)?+(?:(id|event): ?([^\n\x00]*+)\n)?+data: ?([^\n]*+)\n\n"
)


class SSEDecoder:
    """Turns the bytes of one or more event-stream responses into :class:`RawEvent` objects.

    Attributes read by the engine: ``last_event_id`` (the WHATWG "last event ID string", set at
    each dispatch), ``retry`` (the last valid ``retry:`` value in milliseconds, or None) and
    ``dropped`` (how many oversized events were dropped).
    """

    _data: list[bytes]
    _event: bytes
    _event_retry: int | None
    _size: int
    _oversized: bool
    _own_id: bool

    def __init__(
        self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES, last_event_id: str = ""
    ) -> None:
        if max_event_bytes < 1:
            raise ValueError("max_event_bytes must be at least 1")
        self.max_event_bytes = max_event_bytes
        self.last_event_id = last_event_id
        self.retry: int | None = None
        self.dropped = 0
        self.start_stream()

    # ------------------------------------------------------------------ public

    def start_stream(self, last_event_id: str | None = None) -> None:
        """Begin a new response: forget any partial line and event, keep the last event id.

        ``last_event_id`` overrides the remembered one (the engine passes what it delivered).
        """
        if last_event_id is not None:
            self.last_event_id = last_event_id
        self._head = bytearray()  # the first bytes of the response, until the BOM is decided
        self._at_start = True
        self._skip_lf = False  # the previous chunk ended with CR: a leading LF belongs to it
        self._line = bytearray()  # an incomplete line
        self._line_overflow = False  # discarding the rest of an over-long line
        self._reset_event()
        self._id_buffer = self.last_event_id

    def feed(self, chunk: bytes) -> list[RawEvent]:
        """Decode one chunk of bytes; return the events it completes, in order."""
        if self._at_start:
            chunk = self._strip_bom(chunk)
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == _LF:
                chunk = chunk[1:]
                if not chunk:
                    return []
        if b"\r" in chunk:
            return self._feed_lines(chunk)
        return self._feed_blocks(chunk)

    def _feed_blocks(self, chunk: bytes) -> list[RawEvent]:
        """A chunk without CR: the usual events by one match each, the rest line by line.

        Lines go to :meth:`_feed_lines` a block at a time (up to the blank line that ends it),
        so the fast path starts again at the next event.
        """
        pos, end = 0, len(chunk)
        events: list[RawEvent] = []
        if self._in_event():  # finish the event begun in an earlier chunk, line by line
            if not self._line and not self._line_overflow and chunk[0] == _LF:
                pos = 1  # its blank line
            else:
                blank = chunk.find(b"\n\n")
                if blank < 0:
                    return self._feed_lines(chunk)
                pos = blank + 2
            events = self._feed_lines(chunk[:pos])
        match = _SIMPLE_EVENT.match
        limit = self.max_event_bytes
        append = events.append
        new = tuple.__new__  # RawEvent._make without its length check: 0.09 against 0.12 µs
        last_id = self._id_buffer  # at an event's start, the id buffer is the last event id
        while pos < end:
            m = match(chunk, pos)
            if m is not None:
                name1, value1, name2, value2, data = m.groups()
                if len(data) <= limit:
                    pos = m.end()
                    event, own_id = b"", False
                    if name1 is not None:
                        if name1 == b"id":
                            last_id, own_id = value1.decode("utf-8", "replace"), True
                        else:
                            event = value1
                        if name2 is not None:
                            if name2 == b"id":
                                last_id, own_id = value2.decode("utf-8", "replace"), True
                            else:
                                event = value2
                    name = event.decode("utf-8", "replace") if event else "message"
                    text = data.decode("utf-8", "replace")
                    append(new(RawEvent, (name, text, last_id, None, own_id)))
                    continue
            # not the usual event: line by line, up to its blank line
            self._id_buffer = self.last_event_id = last_id
            blank = chunk.find(b"\n\n", pos)
            if blank < 0:  # the last event, unfinished
                events += self._feed_lines(chunk[pos:] if pos else chunk)
                return events
            events += self._feed_lines(chunk[pos : blank + 2])
            pos = blank + 2
            last_id = self._id_buffer
        self._id_buffer = self.last_event_id = last_id
        return events

    def _in_event(self) -> bool:
        """Whether lines of an event not yet dispatched (or a partial line) are held."""
        return bool(
            self._line
            or self._line_overflow
            or self._data
            or self._oversized
            or self._own_id
            or self._event
            or self._event_retry is not None
        )

    def _feed_lines(self, chunk: bytes) -> list[RawEvent]:
        """Decode a chunk line by line (any line ends, any fields, partial lines)."""
        lines = chunk.splitlines()  # bytes split on CR, LF and CRLF only
        end = chunk[-1]
        tail = b""
        if end == _CR:
            self._skip_lf = True
        elif end != _LF:
            tail = lines.pop()  # an incomplete line
        if lines and (self._line or self._line_overflow):
            if self._line_overflow:  # the end of an over-long line: skip it
                self._line_overflow = False
                del lines[0]
            else:
                self._line += lines[0]
                lines[0] = bytes(self._line)
                self._line = bytearray()
        events = self._process(lines) if lines else []
        if tail:
            self._buffer_partial(tail)
        return events

    # ------------------------------------------------------------------ lines

    def _strip_bom(self, chunk: bytes) -> bytes:
        self._head += chunk
        if len(self._head) < len(BOM) and BOM.startswith(self._head):
            return b""  # could still be a BOM: wait for more
        self._at_start = False
        head = bytes(self._head)
        self._head = bytearray()
        return head[len(BOM) :] if head.startswith(BOM) else head

    def _buffer_partial(self, tail: bytes) -> None:
        if self._line_overflow:
            return
        data = (self._line[:5] + tail[:5]).startswith(b"data:")
        # a data line counts against what the event's data may still grow by; another field's
        # line (an id split across reads) is held whole up to the cap, and ignored beyond it
        room = self.max_event_bytes - self._size if data else self.max_event_bytes
        if len(self._line) + len(tail) > room + _LINE_SLACK:
            self._line = bytearray()
            self._line_overflow = True
            if data:
                self._mark_oversized()
            return
        self._line += tail

    # ------------------------------------------------------------------ fields

    def _process(self, lines: list[bytes]) -> list[RawEvent]:
        """Interpret complete lines (the hot loop: kept flat on purpose)."""
        events: list[RawEvent] = []
        for line in lines:
            if not line:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
                continue
            if line[0] == 0x3A:  # ":" a comment
                continue
            if line.startswith(b"data: "):  # the usual spelling: one copy of the value, not two
                name, value = b"data", line[6:]
            else:
                name, colon, value = line.partition(b":")
                if colon and value[:1] == b" ":
                    value = value[1:]
            if name == b"data":
                if not self._oversized:  # (inlined: the hottest line of the decoder)
                    # the data's size: its bytes, and an LF before each line but the first
                    self._size += len(value) + 1 if self._data else len(value)
                    if self._size > self.max_event_bytes:
                        self._mark_oversized()
                    else:
                        self._data.append(value)
            elif name == b"event":
                self._event = value
            elif name == b"id":
                if b"\0" not in value:
                    self._id_buffer = value.decode("utf-8", "replace")
                    self._own_id = True
            elif name == b"retry" and value.isdigit():  # bytes.isdigit: ASCII digits, not empty
                self.retry = int(value)
                self._event_retry = self.retry
        return events

    def _mark_oversized(self) -> None:
        self._oversized = True
        self._data = []

    def _dispatch(self) -> RawEvent | None:
        self.last_event_id = self._id_buffer
        oversized, data, event, retry = self._oversized, self._data, self._event, self._event_retry
        own_id = self._own_id
        self._reset_event()
        if oversized:
            self.dropped += 1
            log.warning(
                "dropped an event larger than %d bytes (last event id %r)",
                self.max_event_bytes,
                self.last_event_id,
            )
            return None
        if not data:
            return None
        joined = data[0] if len(data) == 1 else b"\n".join(data)
        return RawEvent(
            event=event.decode("utf-8", "replace") if event else "message",
            data=joined.decode("utf-8", "replace"),
            id=self.last_event_id,
            retry=retry,
            own_id=own_id,
        )

    def _reset_event(self) -> None:
        self._data = []
        self._event = b""
        self._event_retry = None
        self._size = 0
        self._oversized = False
        self._own_id = False
