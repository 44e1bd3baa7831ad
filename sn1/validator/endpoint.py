"""The validator's own endpoint: a small health page, published on chain.

Miners and operators can check that a validator is alive; it serves no
work, so it needs no authentication.
"""

from __future__ import annotations

import asyncio
import logging

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from .. import __version__
from ..config import get

log = logging.getLogger("sn1.validator")


def build_app(v) -> Starlette:
    async def health(request):
        return JSONResponse({
            "role": "validator", "version": __version__, "uid": v.uid,
            "hotkey": v.wallet.hotkey.ss58_address, "step": v.state.step,
        })

    return Starlette(routes=[Route("/health", health)])


async def serve_endpoint(config, v) -> asyncio.Task:
    port = get(config, "axon.port")
    server = uvicorn.Server(uvicorn.Config(build_app(v), host=get(config, "axon.ip"), port=port,
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    ip = get(config, "axon.external_ip") or "127.0.0.1"
    try:
        await asyncio.to_thread(v.chain.serve, v.wallet, ip,
                                get(config, "axon.external_port") or port)
    except Exception as e:
        log.warning("could not publish the validator endpoint on chain: %s", e)
    return task
