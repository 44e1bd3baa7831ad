"""btauth/1 helpers: every request is signed by the caller's hotkey and bound to the miner's.

Thin wrappers over ``bittensor.http_auth`` (which does the cryptography, the
freshness window and replay protection). The signature covers method, path,
sha256 of the exact body bytes, a nanosecond nonce, the sender and the
receiver hotkey, so the body must be signed as sent: ``BtAuth`` signs inside
httpx's auth flow, after the client has rendered the final body — this is
how an OpenAI client (or any httpx user) talks to a miner.
"""

from __future__ import annotations

from typing import Mapping

import httpx
from bittensor import http_auth

from .wire import CHAT_PATH

AuthError = http_auth.AuthError


def hotkey_signer(wallet):
    """The wallet's loaded hotkey keypair (or ``wallet`` itself if it already is a signer).

    Signing through a ``Wallet`` re-resolves its key on every call (~1 ms);
    the keypair signs in ~0.04 ms, which matters when a validator signs one
    request per miner per step.
    """
    hotkey = getattr(wallet, "hotkey", None)
    return hotkey if hotkey is not None and hasattr(hotkey, "sign") else wallet


def sign_headers(wallet, body: bytes, receiver_hotkey: str, *, path: str = CHAT_PATH,
                 method: str = "POST") -> dict[str, str]:
    """The X-Bittensor-* headers for ``body`` sent to the miner ``receiver_hotkey``.

    ``wallet``: a bittensor Wallet, or (faster) ``hotkey_signer(wallet)``.
    """
    return http_auth.sign(wallet, method=method, path=path, body=body, receiver_ss58=receiver_hotkey)


def verify_headers(headers: Mapping[str, str], body: bytes, *, method: str, path: str,
                   self_hotkey: str, nonce_store=None) -> str:
    """The caller's hotkey, or AuthError (missing, malformed, stale, replayed, bad, wrong receiver)."""
    return http_auth.verify(headers, body, method=method, path=path, self_hotkey_ss58=self_hotkey,
                            nonce_store=nonce_store).hotkey_ss58


def has_auth_headers(headers: Mapping[str, str]) -> bool:
    """Cheap pre-check before reading a body: are the required headers there at all?"""
    return all(h.lower() in headers for h in (http_auth.HEADER_VERSION.lower(),
                                               http_auth.HEADER_HOTKEY.lower(),
                                               http_auth.HEADER_NONCE.lower(),
                                               http_auth.HEADER_SIGNATURE.lower()))


class BtAuth(httpx.Auth):
    """httpx auth that signs each request's final body for one miner.

    >>> client = openai.AsyncOpenAI(base_url="http://1.2.3.4:8091/v1", api_key="-",
    ...     http_client=httpx.AsyncClient(auth=BtAuth(wallet, miner_hotkey)))

    Each send (retries included) gets a fresh nonce.
    """

    requires_request_body = True

    def __init__(self, wallet, receiver_hotkey: str):
        self.wallet = hotkey_signer(wallet)
        self.receiver_hotkey = receiver_hotkey

    def auth_flow(self, request):
        path = request.url.raw_path.decode("ascii")
        request.headers.update(sign_headers(self.wallet, request.content, self.receiver_hotkey,
                                            path=path, method=request.method))
        yield request
