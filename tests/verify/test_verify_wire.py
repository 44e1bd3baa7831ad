"""Logprobs on the wire: request fields, the chunk encoder, the capped decoder, a hostile peer."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest

from sn1.llm.base import GenParams, Piece, piece_tokens
from sn1.protocol.logprobs import MAX_TOP_LOGPROBS, LogprobsError, TokenLogprob, TopLogprob, decode_logprobs
from sn1.protocol.request import RequestError, parse_request
from sn1.protocol.wire import decode_chunk, decode_chunk_logprobs, encode_chunk, request_body
from sn1.validator.query import MinerClient

MSG = [{"role": "user", "content": "hi"}]
TOK = TokenLogprob(b" caf\xc3", -0.25, (TopLogprob(b" caf\xc3", -0.25), TopLogprob(b" tea", -1.5)))


def test_request_body_asks_for_logprobs():
    body = json.loads(request_body(MSG, top_logprobs=3, seed=7, model="m"))
    assert body["logprobs"] is True and body["top_logprobs"] == 3 and body["seed"] == 7 and body["model"] == "m"
    assert "logprobs" not in json.loads(request_body(MSG))
    req = parse_request(request_body(MSG, top_logprobs=0))
    assert req.wants_logprobs == 0
    assert parse_request(request_body(MSG)).wants_logprobs is None


@pytest.mark.parametrize("fields, message", [
    ({"logprobs": True, "top_logprobs": MAX_TOP_LOGPROBS + 1}, "top_logprobs: Input should be less than or equal to 20"),
    ({"logprobs": True, "top_logprobs": -1}, "top_logprobs: Input should be greater than or equal to 0"),
    ({"top_logprobs": 3}, "top_logprobs needs logprobs: true"),
    ({"logprobs": "maybe"}, "logprobs: Input should be a valid boolean"),
])
def test_bad_logprobs_fields_are_422_with_the_field(fields, message):
    with pytest.raises(RequestError) as e:
        parse_request(json.dumps({"messages": MSG, **fields}).encode())
    assert e.value.status == 422 and message in e.value.message


def test_chunk_round_trip_keeps_exact_bytes():
    data = encode_chunk("café", 2, logprobs=[TOK, TokenLogprob(b"\xa9", -0.5)])
    payload = data[len(b"data: "):].strip()
    assert decode_chunk(payload) == ("café", None, 2)
    got = decode_chunk_logprobs(payload)
    assert got == [TOK, TokenLogprob(b"\xa9", -0.5)]
    obj = json.loads(payload)
    assert obj["choices"][0]["logprobs"]["content"][1]["bytes"] == [0xa9]
    # No logprobs asked: the chunk is the same as before.
    assert b"logprobs" not in encode_chunk("x", 1)
    assert decode_chunk_logprobs(encode_chunk("x", 1)[6:].strip()) == []


def test_piece_is_a_str_carrying_tokens():
    p = Piece("café", [TOK, TokenLogprob(b"\xa9", -0.5)])
    assert p == "café" and isinstance(p, str) and "".join([p, "!"]) == "café!"
    assert piece_tokens(p) == 2 and piece_tokens("plain") == 1
    assert GenParams().replace(logprobs=4).logprobs == 4


def _content(entries):
    return {"content": entries}


@pytest.mark.parametrize("raw, message", [
    (_content([{"token": "a", "logprob": float("nan")}]), "must be finite"),
    (_content([{"token": "a", "logprob": float("inf")}]), "must be finite"),
    (_content([{"token": "a", "logprob": -10**400}]), "must be finite"),       # beyond any float
    (_content([{"token": "a", "logprob": 0.5}]), "cannot be positive"),
    (_content([{"token": "a", "logprob": "-1"}]), "must be a number"),
    (_content([{"token": "a", "logprob": True}]), "must be a number"),
    (_content([{"token": 5, "logprob": -1}]), "token: must be a string"),
    (_content([{"token": "a", "bytes": [300], "logprob": -1}]), "values must be integers 0-255"),
    (_content([{"token": "a", "bytes": "abc", "logprob": -1}]), "must be a list"),
    (_content([{"token": "a", "logprob": -1, "top_logprobs": [{"token": "b", "logprob": -1}] * 10_000}]),
     "10000 entries, more than the limit of 20"),
    (_content([{"token": "a", "logprob": -1, "top_logprobs": {"b": -1}}]), "top_logprobs: must be a list"),
    (_content(["a"]), "must be an object"),
    ({"content": "a"}, "content: must be a list"),
    ([1, 2], "must be an object"),
    (_content([{"token": "a" * 300, "logprob": -1}]), "longer than 256 bytes"),
])
def test_decoder_refuses_bad_logprobs_with_one_line(raw, message):
    with pytest.raises(LogprobsError) as e:
        decode_logprobs(raw)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_decoder_takes_openai_shapes():
    assert decode_logprobs(None) == [] and decode_logprobs({"content": None}) == []
    got = decode_logprobs(_content([{"token": "a", "logprob": -1, "bytes": None, "top_logprobs": []}]))
    assert got == [TokenLogprob(b"a", -1.0, ())]


# ---- a hostile peer, through the validator's real client --------------------------------------

@dataclass
class Target:
    uid: int
    hotkey: str
    endpoint: str


def _sse(chunks: list[dict]) -> bytes:
    events = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    head = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n"
            b"content-length: " + str(len(events)).encode() + b"\r\n\r\n")
    return head + events


async def _serve(response: bytes):
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(response)
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _ask(make_wallet, chunks: list[dict], k: int):
    """The validator's client asking a stand-in peer that streams ``chunks``."""
    server, port = await _serve(_sse(chunks))
    try:
        async with MinerClient(make_wallet("val")) as client:
            (r,) = await client.query([Target(1, make_wallet("m").hotkey.ss58_address, f"127.0.0.1:{port}")],
                                      MSG, GenParams(max_tokens=4, logprobs=k), timeout=5)
    finally:
        server.close()
    return r


def _chunk(logprobs, content="hi", n=1):
    return {"choices": [{"index": 0, "delta": {"content": content}, "logprobs": logprobs,
                         "finish_reason": None}], "n_tokens": n}


@pytest.mark.parametrize("logprobs, message", [
    ({"content": [{"token": "hi", "logprob": float("nan")}]}, "must be finite"),
    ({"content": [{"token": "hi", "logprob": -1, "top_logprobs": [{"token": "x", "logprob": -2}] * 10_000}]},
     None),     # 10,000 alternatives: cut by the event cap or refused by the decoder
    ({"content": [{"token": ["hi"], "logprob": -1}]}, "token: must be a string"),
])
async def test_hostile_logprobs_become_a_protocol_error(make_wallet, logprobs, message):
    r = await _ask(make_wallet, [_chunk(logprobs)], 2)
    assert r.status == "protocol_error", r
    if message:
        assert message in r.message
    assert "\n" not in r.message and len(r.message) <= 300


async def test_client_collects_logprobs_of_every_chunk(make_wallet):
    entries = [{"token": t, "logprob": -0.5, "top_logprobs": [{"token": t, "logprob": -0.5}]} for t in ("a", "b", "c")]
    r = await _ask(make_wallet, [_chunk({"content": entries[:1]}, "a"), _chunk({"content": entries[1:]}, "bc", 2)], 1)
    assert r.status == "ok" and r.completion == "abc"
    assert [t.token for t in r.logprobs] == [b"a", b"b", b"c"]
    assert r.chunk_lp == [1, 2] and r.chunk_chars == [1, 2]     # each chunk's own proof, recorded
    json.dumps(r.to_dict())


def test_pieces_wait_for_whole_characters():
    from sn1.llm.base import PieceAssembler

    a = PieceAssembler()
    assert a.add(TokenLogprob(b" caf\xc3", -0.1)) is None         # half of "é"
    piece = a.add(TokenLogprob(b"\xa9!", -0.2))
    assert piece == " café!" and [t.token for t in piece.logprobs] == [b" caf\xc3", b"\xa9!"]
    assert a.flush() is None
    # An invalid byte is not the start of a character: nothing to wait for, U+FFFD at once
    # (what decoding the whole stream gives there).
    bad = a.add(TokenLogprob(b"\xff", -1.0))
    assert bad == "\ufffd" and len(bad.logprobs) == 1 and a.flush() is None
