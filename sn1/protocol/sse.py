"""Incremental server-sent-events parser over raw bytes, linear in its input whatever it is.

Fed whatever the network delivers (one byte, half a UTF-8 character, ten
events at once) it returns the ``data`` payloads of every complete event, as
bytes. It never decodes text itself: a payload is only handed out once its
whole line has arrived, and the UTF-8 bytes of a character can never contain
the line terminators (0x0A, 0x0D), so a multi-byte character split across reads
is reassembled before anyone decodes it.

Follows the WHATWG event-stream rules that matter here: lines end with LF, CR
or CRLF (a CRLF split across reads is handled), ``data:`` lines of one event
are joined with LF, a blank line dispatches the event, ``:`` lines are
comments, other fields (``event``, ``id``, ``retry``) are ignored.

A peer chooses the input, so every cost is bounded by the bytes it sent:

- an incomplete line is kept as a list of pieces with a running length (a line
  dripped a byte at a time is joined once, when it ends);
- an event's size and number of ``data:`` lines are running totals;
- only ``data:`` lines are visited one by one: comments, other fields and
  runs of blank lines are skipped with C-level ``find`` (they matter only
  through whether a blank line lies between two data lines), so a flood of
  ``\\n`` or ``:\\n`` costs less than honest text;
- caps: ``max_line`` bytes per line, ``max_event`` bytes and
  ``max_data_lines`` lines per event, ``max_events`` per stream (SSEError).

The parser does not yield to the event loop itself: callers feed bounded
slices (``sn1.validator.query`` feeds at most ``FEED_SLICE`` bytes between two
``await``s), which bounds the time any one feed takes.
"""

from __future__ import annotations

FEED_SLICE = 4 * 1024           # bytes a caller should feed between two awaits (~0.1 ms of work)


class SSEError(Exception):
    """The stream broke a cap: one line, one event, or the number of events."""


class SSEParser:
    def __init__(self, max_line: int = 1 << 20, *, max_event: int | None = None,
                 max_data_lines: int = 1024, max_events: int | None = None):
        self.max_line = max_line
        self.max_event = max_line if max_event is None else max_event
        self.max_data_lines = max_data_lines
        self.max_events = max_events
        self.n_events = 0               # dispatched so far
        self.error: SSEError | None = None   # a cap broken after some events of the same feed
        self._tail: list[bytes] = []    # pieces of an incomplete line carried to the next feed
        self._tail_len = 0
        self._data: list[bytes] = []    # data lines of the event being read
        self._data_len = 0
        self._pending_cr = False        # the previous feed ended with CR (maybe half of CRLF)

    def feed(self, chunk: bytes) -> list[bytes]:
        """The payloads of the events completed by ``chunk``.

        SSEError at a cap; when events completed before the cap in the same
        chunk they are returned first, the error kept in ``error`` and raised
        by the next call (so no answer text that arrived is lost).
        """
        if self.error is not None:
            raise self.error
        events: list[bytes] = []
        try:
            self._feed(chunk, events)
        except SSEError as e:
            if not events:
                raise
            self.error = e
        return events

    def _feed(self, chunk: bytes, events: list[bytes]) -> None:
        if not chunk:
            return
        if self._pending_cr:
            self._pending_cr = False
            if chunk[:1] == b"\n":   # the LF of a CRLF whose CR ended the previous read
                chunk = chunk[1:]
                if not chunk:
                    return
        if b"\r" in chunk:
            self._pending_cr = chunk[-1:] == b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        i = chunk.find(b"\n")
        if i < 0:                       # no line ends here: keep the piece, copy nothing
            self._keep(chunk)
            return
        first = chunk[:i]
        if self._tail:
            self._keep(first)
            first = b"".join(self._tail)
            self._tail.clear()
            self._tail_len = 0
        j = chunk.rfind(b"\n")
        self._line(first, events)
        if j > i:
            self._lines(chunk, i + 1, j + 1, events)
        if j + 1 < len(chunk):
            self._keep(chunk[j + 1:])

    def _lines(self, buf: bytes, start: int, end: int, events: list[bytes]) -> None:
        """The whole lines in ``buf[start:end]`` (each ends with \\n; ``start`` begins a line).

        Only ``data:`` lines are visited one by one; between two of them, the
        other lines matter only through whether one of them is blank, which one
        C-level ``find`` tells. So comments, other fields and blank lines cost
        no Python work per line.
        """
        find = buf.find
        data = self._data
        while start < end:
            if buf.startswith(b"data:", start):
                d = start
            else:
                d = find(b"\ndata:", start, end)
                d = end if d < 0 else d + 1
                if data and (buf[start] == 10 or find(b"\n\n", start, d) >= 0):
                    self._dispatch(events)      # a blank line among the skipped ones
                if d >= end:
                    return
            e = find(b"\n", d, end)
            v = d + 6 if buf[d + 5] == 32 else d + 5     # "data: x" or "data:x"
            start = e + 1
            if not data and start < end and buf[start] == 10 and e - v < self.max_event:
                # The usual event: one data line and a blank line; no list, no join.
                events.append(buf[v:e])
                start += 1
                self.n_events += 1
                if self.max_events is not None and self.n_events > self.max_events:
                    raise SSEError(f"the stream sent more than {self.max_events} events")
                continue
            self._add_data(buf[v:e])
            if start < end and buf[start] == 10:       # the blank line right after
                self._dispatch(events)
                start += 1

    def _keep(self, piece: bytes) -> None:
        if self._tail_len + len(piece) > self.max_line:
            raise SSEError(f"an SSE line exceeded {self.max_line} bytes")
        self._tail.append(piece)
        self._tail_len += len(piece)

    def _line(self, line: bytes, events: list[bytes]) -> None:
        if not line:
            if self._data:
                self._dispatch(events)
        elif line[:5] == b"data:":
            self._add_data(line[6:] if line[5:6] == b" " else line[5:])
        # comments (":...") and other fields are ignored

    def _dispatch(self, events: list[bytes]) -> None:
        data = self._data
        events.append(data[0] if len(data) == 1 else b"\n".join(data))
        data.clear()
        self._data_len = 0
        self.n_events += 1
        if self.max_events is not None and self.n_events > self.max_events:
            raise SSEError(f"the stream sent more than {self.max_events} events")

    def _add_data(self, value: bytes) -> None:
        self._data_len += len(value) + 1
        if self._data_len > self.max_event:
            raise SSEError(f"an SSE event exceeded {self.max_event} bytes")
        self._data.append(value)
        if len(self._data) > self.max_data_lines:
            raise SSEError(f"an SSE event had more than {self.max_data_lines} data lines")
