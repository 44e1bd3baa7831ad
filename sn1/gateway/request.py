"""What a client may send to ``POST /v1/chat/completions``.

Stricter than the miner's parser (sn1.protocol.request): an unknown field is
refused rather than silently dropped, so a client that asks for something we
do not do (``tools``, ``n: 3``…) learns it at once. Errors are 400 with the
field named, as OpenAI answers them.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..protocol.request import ChatRequest, Message, parse_request

DEFAULT_MAX_TOKENS = 256


class GatewayMessage(Message):
    model_config = ConfigDict(extra="forbid")
    name: Optional[str] = None        # OpenAI's optional speaker name; not forwarded


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


class GatewayRequest(ChatRequest):
    model_config = ConfigDict(extra="forbid")

    messages: list[GatewayMessage] = Field(min_length=1)
    n: Literal[1] = 1
    user: Optional[str] = None
    stream_options: Optional[StreamOptions] = None

    # Accepted by the miners' parser but not relayed by the gateway (miners' token logprobs
    # are for validators checking their model): refused, never silently dropped.
    @field_validator("logprobs", "top_logprobs")
    @classmethod
    def _not_relayed(cls, v):
        if v:
            raise ValueError("token logprobs are not relayed by the gateway")
        return v


def parse(body: bytes) -> GatewayRequest:
    """The validated request; RequestError(400) naming the problem."""
    return parse_request(body, GatewayRequest, field_status=400)
