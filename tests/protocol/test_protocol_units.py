"""Protocol pieces on their own: SSE parser, chunk encoding, request validation, priority gate."""

import asyncio
import json

import pytest

from sn1.miner.backends.test import MOCK_TEXT, words
from sn1.miner.priority import PriorityGate, QueueFull
from sn1.protocol.request import RequestError, parse_request, parse_timeout_header
from sn1.protocol.sse import SSEError, SSEParser
from sn1.protocol.wire import DONE, ChunkEncoder, ProtocolError, decode_chunk, encode_completion

TEXT = "Grüße 👋🏽 日本語\n\nline two\r\n\ttabbed — “quotes” \\ backslash \"q\"  \n"


def _stream(pieces, batch):
    enc = ChunkEncoder("test")
    out = b"".join(enc.chunk("".join(pieces[i:i + batch]), len(pieces[i:i + batch]))
                   for i in range(0, len(pieces), batch))
    return out + enc.chunk("", 0, "stop") + DONE


def _read(parser, data: bytes, step: int):
    payloads = []
    for i in range(0, len(data), step):
        payloads += parser.feed(data[i:i + step])
    return payloads


def _text(payloads):
    assert payloads[-1] == b"[DONE]"
    return "".join(decode_chunk(p)[0] for p in payloads[:-1])


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_parser_byte_by_byte_keeps_split_utf8_and_newlines(step):
    data = _stream(words(TEXT), batch=2)
    assert "日".encode() in data          # multi-byte UTF-8 on the wire, not \u escapes
    payloads = _read(SSEParser(), data, step)
    assert _text(payloads) == TEXT.replace("\r", "")     # CR: a control character, dropped
    assert len(payloads) == len(range(0, len(words(TEXT)), 2)) + 2


def test_parser_line_endings_comments_multiline_data():
    p = SSEParser()
    data = b": keep-alive\r\ndata: a\r\ndata:b\r\n\r\nevent: x\rdata: c\r\rdata: [DONE]\n\n"
    # every split point, including between CR and LF
    for cut in range(len(data) + 1):
        p = SSEParser()
        assert p.feed(data[:cut]) + p.feed(data[cut:]) == [b"a\nb", b"c", b"[DONE]"]


def test_parser_caps_a_line_that_never_ends():
    p = SSEParser(max_line=100)
    p.feed(b"data: " + b"x" * 90)
    with pytest.raises(SSEError):
        p.feed(b"x" * 20)
    p = SSEParser(max_line=100)
    with pytest.raises(SSEError):   # many data lines, never a blank line
        for _ in range(30):
            p.feed(b"data: 0123456789\n")


def test_chunks_are_openai_chunks():
    enc = ChunkEncoder("m", completion_id="chatcmpl-1", created=5)
    first = json.loads(enc.chunk("Hé\n", 2)[6:])
    assert first == {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 5, "model": "m",
                     "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hé\n"},
                                  "finish_reason": None}], "n_tokens": 2}
    last = enc.chunk("", 0, "timeout")
    assert last.endswith(b"\n\n") and decode_chunk(last[6:-2]) == ("", "timeout", 0)
    done = json.loads(encode_completion("hi", 1, "length"))
    assert done["object"] == "chat.completion"
    assert done["choices"][0]["message"]["content"] == "hi" and done["choices"][0]["finish_reason"] == "length"


def test_decode_chunk_errors_and_foreign_chunks():
    with pytest.raises(ProtocolError, match="not JSON"):
        decode_chunk(b"{oops")
    with pytest.raises(ProtocolError, match="miner error: boom"):
        decode_chunk(b'{"error": {"message": "boom"}}')
    with pytest.raises(ProtocolError, match="choices"):
        decode_chunk(b'{"choices": []}')
    # an OpenAI server's chunk without n_tokens counts as one token
    assert decode_chunk(b'{"choices":[{"delta":{"content":"x"},"finish_reason":null}]}') == ("x", None, 1)
    # a count no chunk could hold (hundreds of digits) is ignored like a missing one
    huge = b'{"choices":[{"delta":{"content":"x"},"finish_reason":null}],"n_tokens":1' + b"0" * 400 + b"}"
    assert decode_chunk(huge) == ("x", None, 1)


def test_words_join_back_exactly():
    for text in (TEXT, MOCK_TEXT, "  leading", "trailing  ", "", " ", "a"):
        assert "".join(words(text)) == text
    assert words("a  b\nc") == ["a  ", "b\n", "c"]


@pytest.mark.parametrize("body,status,field", [
    (b"not json", 400, None),
    (b"[1, 2]", 400, None),
    (b'{"stream": true}', 422, "messages"),
    (b'{"messages": []}', 422, "messages"),
    (b'{"messages": [{"role": "robot", "content": "x"}]}', 422, "messages.0.role"),
    (b'{"messages": [{"role": "user"}]}', 422, "messages.0.content"),
    (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}', 422, "max_tokens"),
    (b'{"messages": [{"role": "user", "content": "x"}], "temperature": 5}', 422, "temperature"),
    (b'{"messages": [{"role": "user", "content": "x"}], "timeout": -1}', 422, "timeout"),
    (b'{"messages": [{"role": "user", "content": "x"}], "stream": "maybe"}', 422, "stream"),
    # integers an engine passes on as C ints, and a model name that is echoed in refusals
    (b'{"messages": [{"role": "user", "content": "x"}], "seed": 18446744073709551616}', 422, "seed"),
    (b'{"messages": [{"role": "user", "content": "x"}], "seed": 1' + b"0" * 4000 + b'}', 422, "seed"),
    (b'{"messages": [{"role": "user", "content": "x"}], "top_k": 2147483648}', 422, "top_k"),
    (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 2147483648}', 422, "max_tokens"),
    (b'{"messages": [{"role": "user", "content": "x"}], "model": "' + b"m" * 257 + b'"}', 422, "model"),
])
def test_bad_requests_name_the_field(body, status, field):
    with pytest.raises(RequestError) as e:
        parse_request(body)
    assert e.value.status == status
    if field:
        assert e.value.field == field and e.value.message.startswith(field + ":")


def test_good_request_and_timeout_header():
    r = parse_request(json.dumps({
        "model": "x", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                               {"type": "text", "text": "b"}]}],
        "stream": True, "max_tokens": 7, "timeout": 2.5, "seed": 3, "n": 1, "stop": "END"}).encode())
    assert r.messages[0].content == "ab" and r.stream and r.token_limit == 7 and r.timeout == 2.5
    assert r.stop_list == ["END"]
    assert parse_timeout_header("1.5") == 1.5 and parse_timeout_header(None) is None
    for bad in ("abc", "0", "-1", "inf", "nan"):
        with pytest.raises(RequestError):
            parse_timeout_header(bad)


async def test_gate_serves_highest_priority_first_and_refuses_when_full():
    gate = PriorityGate(max_concurrent=1, max_queue=3)
    await gate.acquire(0)                      # the running generation
    order = []

    async def waiter(name, prio):
        await gate.acquire(prio)
        order.append(name)
        await asyncio.sleep(0)
        gate.release()

    tasks = [asyncio.create_task(waiter(n, p)) for n, p in (("low", 1), ("high", 100), ("mid", 10))]
    await asyncio.sleep(0.01)
    with pytest.raises(QueueFull):
        await gate.acquire(1000)
    gate.release()
    await asyncio.gather(*tasks)
    assert order == ["high", "mid", "low"]
    assert gate.active == 0 and gate.waiting == 0


async def test_gate_cancelled_waiter_leaves_no_trace():
    gate = PriorityGate(max_concurrent=1, max_queue=2)
    await gate.acquire(0)
    t = asyncio.create_task(gate.acquire(5))
    await asyncio.sleep(0.01)
    assert gate.waiting == 1
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    assert gate.waiting == 0
    gate.release()                               # nobody waits: the slot is simply free
    assert gate.active == 0
    await asyncio.wait_for(gate.acquire(0), 1)   # and can be taken again
    assert gate.active == 1
