"""Text and token bytes are decoded and cleaned the same way (two honest answers used to fail)."""

from __future__ import annotations

from sn1.llm.base import PieceAssembler
from sn1.protocol.logprobs import TokenLogprob
from sn1.protocol.text import clean_text
from sn1.protocol.wire import decode_chunk, encode_chunk
from sn1.verify import Submission
from sn1.verify.step import _chunks_misaligned, spell


def tok(b: bytes) -> TokenLogprob:
    return TokenLogprob(b, -0.1)


def assemble(tokens: list[bytes]) -> list[str]:
    a = PieceAssembler()
    pieces = [p for p in (a.add(tok(b)) for b in tokens) if p is not None]
    rest = a.flush()
    return pieces + ([rest] if rest is not None else [])


def test_a_long_token_ending_inside_a_character_waits_for_the_rest():
    # 12 bytes ending with the first two bytes of U+201C, then its last byte: the old assembler
    # gave up waiting after 8 bytes and decoded "\ufffd" twice.
    tokens = [b"abcdefghij\xe2\x80", b"\x9c quoted"]
    pieces = assemble(tokens)
    assert "".join(pieces) == b"".join(tokens).decode("utf-8") == "abcdefghij\u201c quoted"
    assert all(p == spell(p.logprobs) for p in pieces)


def test_invalid_bytes_decode_as_the_whole_stream_does():
    for tokens in ([b"ab\xff", b"cd"], [b"\xe2\x80", b"x"], [b"\x80\x80", b"\xe2", b"\x80\x9c"]):
        pieces = assemble(tokens)
        assert "".join(pieces) == b"".join(tokens).decode("utf-8", "replace"), tokens
        assert all(p == spell(p.logprobs) for p in pieces)


def test_carriage_return_tokens_spell_the_cleaned_text():
    # The wire drops \r from chunk text (clean_text); the tokens' bytes keep it: both sides
    # must compare cleaned text, or an honest "\r\n" token fails the answer.
    tokens = [tok(b"Hi"), tok(b"\r\n"), tok(b"there")]
    content, _, _ = decode_chunk(encode_chunk("Hi\r\nthere", 3)[6:].strip())
    assert content == "Hi\nthere"
    for counts in (None, [3]):
        sub = Submission(content, tokens, "ok", "stop", chunk_times=[0.1], chunk_chars=[len(content)],
                         chunk_lp=counts)
        assert _chunks_misaligned(sub) is None
    # A chunk whose text cleans away entirely still carries (and is checked against) its proof.
    sub = Submission("Hi", [tok(b"Hi"), tok(b"\r")], "ok", "stop", chunk_times=[0.1, 0.2], chunk_chars=[2, 0],
                     chunk_lp=[1, 1])
    assert _chunks_misaligned(sub) is None
    sub = Submission("Hi", [tok(b"Hi"), tok(b"x")], "ok", "stop", chunk_times=[0.1, 0.2], chunk_chars=[2, 0],
                     chunk_lp=[1, 1])
    assert "chunk 1" in _chunks_misaligned(sub)
    assert clean_text("\r") == ""
