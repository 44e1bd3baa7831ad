"""The SN1 wire protocol: OpenAI chat completions over btauth/1-signed HTTP, streamed as SSE.

- ``wire``: constants, request bodies, chunk encoding/decoding (no heavy imports).
- ``sse``: an incremental, UTF-8-safe server-sent-events parser over bytes.
- ``request``: server-side validation of a request body (pydantic).
- ``auth``: btauth/1 signing and verification helpers, and an httpx hook for
  OpenAI clients.
- ``text``: a peer's text made valid (U+FFFD, no control characters).
- ``serving``: binding the listening socket, the address to publish.
- ``connections``: what strangers can hold on a server's port (deadlines, caps).

See docs/protocol.md for the normative description.
"""

from .wire import (  # noqa: F401
    CHAT_PATH,
    DONE,
    FINISH_REASONS,
    TIMEOUT_HEADER,
    decode_chunk,
    encode_chunk,
    encode_completion,
    encode_error,
    request_body,
)
