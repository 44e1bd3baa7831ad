"""Incremental server-sent-events parser over raw bytes.

Fed whatever the network delivers (one byte, half a UTF-8 character, ten
events at once) it returns the ``data`` payloads of every complete event, as
bytes. It never decodes text itself: a payload is only handed out once its
whole line has arrived, and the UTF-8 bytes of a character can never contain
the line terminators (0x0A, 0x0D), so a multi-byte character split across reads
is reassembled before anyone decodes it. Per read it does one ``split``: cheap
enough for hundreds of concurrent streams.

Follows the WHATWG event-stream rules that matter here: lines end with LF, CR
or CRLF (a CRLF split across reads is handled), ``data:`` lines of one event
are joined with LF, a blank line dispatches the event, ``:`` lines are
comments, other fields (``event``, ``id``, ``retry``) are ignored.
"""

from __future__ import annotations


class SSEError(Exception):
    """The stream broke the size cap of one line or event (a peer that never ends it)."""


class SSEParser:
    def __init__(self, max_line: int = 1 << 20):
        self.max_line = max_line
        self._tail = b""            # an incomplete line carried to the next feed
        self._data: list[bytes] = []
        self._pending_cr = False    # the previous feed ended with CR (maybe half of CRLF)

    def feed(self, chunk: bytes) -> list[bytes]:
        if not chunk:
            return []
        if self._pending_cr:
            self._pending_cr = False
            if chunk[:1] == b"\n":   # the LF of a CRLF whose CR ended the previous read
                chunk = chunk[1:]
        buf = self._tail + chunk if self._tail else chunk
        if b"\r" in buf:
            if buf[-1:] == b"\r":
                self._pending_cr = True
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._tail = lines.pop()
        if len(self._tail) > self.max_line:
            raise SSEError(f"an SSE line exceeded {self.max_line} bytes")
        events: list[bytes] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append(data[0] if len(data) == 1 else b"\n".join(data))
                    data.clear()
            elif line[:5] == b"data:":
                value = line[5:]
                data.append(value[1:] if value[:1] == b" " else value)
            # comments (":...") and other fields are ignored
        if data and sum(map(len, data)) > self.max_line:
            raise SSEError(f"an SSE event exceeded {self.max_line} bytes")
        return events
