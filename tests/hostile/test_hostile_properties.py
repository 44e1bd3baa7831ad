"""Property-based tests (hypothesis) of what parses a peer's bytes: the SSE reader, the chunk decoder,
request validation. Any input: a result or the module's own error, never another exception; the
SSE reader gives the same events however the bytes are split, and its work stays linear."""

from __future__ import annotations

import json
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sn1.protocol.request import ChatRequest, RequestError, parse_request
from sn1.protocol.sse import SSEError, SSEParser
from sn1.protocol.text import clean_text
from sn1.protocol.wire import ChunkEncoder, DONE, MinerError, ProtocolError, decode_chunk

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_events(data: bytes) -> list[bytes]:
    """The WHATWG event-stream rules, written plainly (whole input at once)."""
    text = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    lines = text.split(b"\n")[:-1]          # the last piece has no line end: not a line yet
    events, buf = [], []
    for line in lines:
        if not line:
            if buf:
                events.append(b"\n".join(buf))
                buf = []
        elif line.startswith(b"data:"):
            v = line[5:]
            buf.append(v[1:] if v.startswith(b" ") else v)
    return events


def feed_split(data: bytes, cuts: list[int], **caps) -> list[bytes]:
    p = SSEParser(max_line=1 << 22, **caps)
    points = sorted({c % (len(data) + 1) for c in cuts}) if data else []
    out, prev = [], 0
    for c in points + [len(data)]:
        out += p.feed(data[prev:c])
        prev = c
    return out


# Bytes biased towards SSE structure: line ends of every kind, field names, UTF-8, junk.
sse_pieces = st.sampled_from([b"data:", b"data: ", b"\n", b"\r", b"\r\n", b":", b"event: x", b"id:1",
                              b"{}", b"[DONE]", "é日👋".encode(), b"\xff", b"\x00", b"x", b" "])
sse_bytes = st.one_of(st.lists(sse_pieces, max_size=80).map(b"".join), st.binary(max_size=400))
cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=12)


@SETTINGS
@given(sse_bytes, cuts)
def test_sse_matches_the_reference_however_split(data, cuts):
    assert feed_split(data, cuts) == reference_events(data)


@SETTINGS
@given(sse_bytes, cuts, st.integers(1, 64), st.integers(1, 8), st.integers(1, 8))
def test_sse_caps_raise_only_sseerror_and_hold(data, cuts, max_line, max_lines, max_events):
    p = SSEParser(max_line=max_line, max_event=max_line, max_data_lines=max_lines, max_events=max_events)
    points = sorted({c % (len(data) + 1) for c in cuts}) + [len(data)]
    prev, got = 0, []
    try:
        for c in points:
            got += p.feed(data[prev:c])
            prev = c
    except SSEError:
        pass
    assert len(got) <= max_events
    assert all(len(e) <= max_line for e in got)
    assert all(e.count(b"\n") < max_lines for e in got)
    assert p._tail_len <= max_line


@SETTINGS
@given(st.lists(st.text(max_size=30), min_size=1, max_size=20), cuts)
def test_sse_round_trips_encoded_chunks(pieces, cuts):
    enc = ChunkEncoder("m")
    data = b"".join(enc.chunk(p, 1) for p in pieces) + enc.chunk("", 0, "stop") + DONE
    events = feed_split(data, cuts)
    assert events[-1] == b"[DONE]"
    text = "".join(decode_chunk(e)[0] for e in events[:-1])
    assert text == clean_text("".join(pieces).encode("utf-8", "surrogatepass").decode("utf-8", "replace"))


def test_sse_work_is_linear_in_the_input():
    """Pathological shapes of 2 MiB fed in 1-byte..4 KiB pieces cost about what honest text costs
    per byte: a quadratic reader would take minutes here (bounds are loose: shared machines)."""
    honest = b"".join(ChunkEncoder("m").chunk("word " * 10, 10) for _ in range(12_000))
    n = len(honest)
    shapes = {"newlines": b"\n" * n, "comments": b":\n" * (n // 2), "cr": b"\r" * n,
              "long line": b"data: " + b"x" * n, "data lines": (b"data:x\n" * (n // 7))}

    def cost(data, piece, **caps):
        p = SSEParser(max_line=1 << 24, max_data_lines=1 << 30, **caps)
        t = time.perf_counter()
        for i in range(0, len(data), piece):
            p.feed(data[i:i + piece])
        return time.perf_counter() - t

    base = cost(honest, 4096)
    for name, data in shapes.items():
        assert cost(data, 4096) < 20 * base + 0.5, name
    # A line dripped in 64-byte pieces: joined once, not re-copied per piece.
    assert cost(b"data: " + b"x" * (n // 4), 64) < 2.0


# ---- chunk decoder ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def chunk_like():
    content = st.one_of(st.text(), json_values)
    finish = st.one_of(st.none(), st.text(max_size=50), json_values)
    return st.builds(lambda c, f, n: {"choices": [{"delta": {"content": c}, "finish_reason": f}],
                                      "n_tokens": n}, content, finish, json_values)


def is_clean(s: str) -> bool:
    s.encode("utf-8")
    return not any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in s)


def check_decode(payload: bytes):
    try:
        content, finish, n = decode_chunk(payload)
    except MinerError as e:
        assert str(e).startswith("miner error: ") and is_clean(str(e))
        return
    except ProtocolError:
        return
    assert isinstance(content, str) and is_clean(content)
    assert finish is None or (isinstance(finish, str) and is_clean(finish) and len(finish) <= 32)
    assert isinstance(n, int) and n >= 0


@SETTINGS
@given(st.binary(max_size=300))
def test_decode_any_bytes(payload):
    check_decode(payload)


@SETTINGS
@given(chunk_like(), st.booleans())
def test_decode_any_chunk_shape(obj, ascii_only):
    # ensure_ascii writes lone surrogates as \ud800 escapes: exactly what a hostile miner sends.
    check_decode(json.dumps(obj, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass"))


@SETTINGS
@given(st.one_of(json_values, st.dictionaries(st.just("error"), json_values)))
def test_decode_any_json(obj):
    check_decode(json.dumps(obj).encode())


# ---- request validation -----------------------------------------------------------------------

def request_like():
    message = st.fixed_dictionaries({}, optional={"role": st.one_of(st.sampled_from(["user", "system", "assistant"]),
                                                                    json_values),
                                                  "content": st.one_of(st.text(), json_values)})
    fields = {"messages": st.one_of(st.lists(message, max_size=3), json_values),
              "stream": json_values, "max_tokens": json_values, "temperature": json_values,
              "top_p": json_values, "top_k": json_values, "seed": json_values, "stop": json_values,
              "timeout": json_values, "model": json_values}
    return st.fixed_dictionaries({}, optional=fields)


def check_request(body: bytes):
    try:
        req = parse_request(body)
    except RequestError as e:
        assert e.status in (400, 422)
        assert "\n" not in e.message and len(e.message) < 1000
        return
    assert isinstance(req, ChatRequest) and req.messages
    for m in req.messages:
        m.content.encode("utf-8")              # what an engine will encode
    for s in req.stop_list or []:
        s.encode("utf-8")


@SETTINGS
@given(st.binary(max_size=300))
def test_request_any_bytes(body):
    check_request(body)


@SETTINGS
@given(request_like())
def test_request_any_shape(obj):
    check_request(json.dumps(obj).encode("utf-8", "surrogatepass"))


def test_request_nesting_bomb_is_a_400():
    for body in (b"[" * 100_000, b'{"messages":' + b"[" * 100_000):
        try:
            parse_request(body)
        except RequestError as e:
            assert e.status == 400
        else:
            raise AssertionError("accepted")
