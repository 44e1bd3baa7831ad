"""`sn1 miner --backend NAME` and the seed's entry scripts (neurons/miners/*/miner.py).

Start-up order: check the wallet and that its hotkey is registered, bind the
port (a busy port fails before any model loads), build the backend, publish
``ip:port`` on chain, then accept requests. The metagraph view is refreshed in
the background for registration and stake checks.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys

from ..config import (LISTEN_PORT, PORT, Bounded, OneLineErrorParser, add_chain_args, add_logging_args,
                      add_wallet_args, at_least, flag, fraction, get, nest, one_line_errors, positive,
                      setup_logging)
from ..errors import UsageError
from ..protocol import metrics as metrics_port
from ..protocol.serving import bind_socket, published_ip
from .backends import BACKENDS, HIDDEN, is_plugin, load_backend, public_backends

log = logging.getLogger("sn1.miner")

DEFAULT_AXON_PORT = 8091


def add_server_args(parser: argparse.ArgumentParser) -> None:
    """The framework's flags (the backend adds its own with ``add_args``).

    Defaults come from MinerSettings, so the flags and the framework cannot drift apart.
    """
    from ..protocol.connections import ConnectionLimits
    from .server import MinerSettings

    d = MinerSettings()
    lim = ConnectionLimits()
    flag(parser, "--axon.ip", default="0.0.0.0", help="address to listen on")
    flag(parser, "--axon.port", type=LISTEN_PORT, default=DEFAULT_AXON_PORT, help="port to listen on")
    flag(parser, "--axon.external_ip", default=None,
         help="ip published on chain (default: --axon.ip, or 127.0.0.1 on sandbox/local)")
    flag(parser, "--axon.external_port", type=PORT, default=None,
         help="port published on chain (default: the listening port)")
    flag(parser, "--neuron.streaming_batch_size", type=at_least(1), default=d.streaming_batch_size,
         help="most tokens per streamed chunk (the first token is always sent alone, at once)")
    flag(parser, "--neuron.streaming_interval", type=positive(), default=d.streaming_interval,
         help="seconds a chunk may wait for more tokens before it is sent")
    flag(parser, "--neuron.max_concurrent", type=at_least(1), default=d.max_concurrent,
         help="generations running at once")
    flag(parser, "--neuron.max_queue", type=at_least(0), default=d.max_queue,
         help="requests waiting for a slot (served by caller stake); beyond: 429")
    flag(parser, "--neuron.max_request_bytes", type=at_least(1), default=d.max_request_bytes,
         help="largest request body accepted (413 beyond)")
    flag(parser, "--neuron.body_timeout", type=positive(), default=d.body_timeout,
         help="seconds a caller may take to send its request body (408 beyond)")
    flag(parser, "--neuron.max_connections", type=at_least(1), default=1024,
         help="requests handled at once (idle connections do not count); one more gets 503")
    flag(parser, "--neuron.reserved_connections", type=at_least(0), default=64,
         help="of --neuron.max_connections, kept for requests signed by registered validators")
    flag(parser, "--neuron.header_timeout", type=positive(), default=lim.header_timeout,
         help="seconds a connection may take to send its request line and headers (then closed)")
    flag(parser, "--neuron.keepalive_timeout", type=positive(), default=lim.keepalive_timeout,
         help="seconds an idle kept-alive connection stays open")
    flag(parser, "--neuron.max_connections_per_ip", type=at_least(1), default=lim.max_per_ip,
         help="open connections from one address; past it its oldest idle one is closed")
    flag(parser, "--neuron.max_connections_per_validator_ip", type=at_least(1),
         default=lim.max_per_validator_ip,
         help="open connections from an address a validator's signed request came from (a gateway "
              "streams many answers at once)")
    flag(parser, "--neuron.max_idle_connections", type=at_least(1), default=lim.max_idle,
         help="connections not carrying a request; past it the oldest idle one is closed")
    flag(parser, "--neuron.max_timeout", type=positive(), default=d.max_timeout,
         help="seconds a generation may run when the caller names no timeout, and at most")
    flag(parser, "--neuron.metagraph_refresh", type=positive(), default=60.0,
         help="seconds between metagraph refreshes (registration and stake of callers)")
    flag(parser, "--neuron.system_prompt", default=None,
         help="system prompt added when a request has none (default: the SN1 prompt; '' for none)")
    flag(parser, "--neuron.max_tokens", type=at_least(1), default=None,
         help="default and cap of tokens per answer (default: the request's, else 256)")
    flag(parser, "--neuron.temperature", type=Bounded(float, 0, 2), default=None, help="override the request's temperature")
    flag(parser, "--neuron.top_p", type=fraction(low_open=True), default=None, help="override the request's top_p")
    flag(parser, "--neuron.top_k", type=at_least(0), default=None, help="override the request's top_k")
    flag(parser, "--blacklist.allow_non_registered", action="store_true",
         help="serve callers whose hotkey is not registered on the subnet")
    flag(parser, "--blacklist.force_validator_permit", action="store_true",
         help="serve only callers holding a validator permit")
    flag(parser, "--blacklist.allow_non_validators", action="store_true",
         help="serve any registered hotkey; by default LLM backends serve only validators that could "
              "pay for the work: permit, --blacklist.min_stake and recent (or no) weights")
    flag(parser, "--blacklist.min_stake", type=at_least(0, float), default=d.min_stake,
         help="least stake a caller must hold to be served as a validator")
    flag(parser, "--blacklist.max_weights_age", type=at_least(0), default=d.max_weights_age,
         help="blocks since a validator last set weights after which it is no longer served "
              "(one that never set weights is served)")


def backend_choice(value: str) -> str:
    """``--backend``: a built-in name or ``module:Class`` (a miner of your own)."""
    if value in BACKENDS or is_plugin(value):
        return value
    raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from {', '.join(public_backends())}, "
                                     f"or module:Class for a miner of your own)")


def plugin_in_argv(argv: list[str]) -> str | None:
    """The ``module:Class`` given to --backend in ``argv``, if any (its class adds its own flags)."""
    for i, a in enumerate(argv):
        value = a.partition("=")[2] if a.startswith("--backend=") else \
            (argv[i + 1] if a == "--backend" and i + 1 < len(argv) else None)
        if value and is_plugin(value):
            return value
    return None


def _add_common(parser: argparse.ArgumentParser, backend_names, default_backend: str | None) -> None:
    flag(parser, "--backend", type=backend_choice, default=default_backend, metavar="BACKEND",
         required=default_backend is None,
         help=f"what the miner runs: {', '.join(public_backends())}, or module:Class for a miner of "
              f"your own (docs/writing-a-miner.md)")
    add_wallet_args(parser)
    add_chain_args(parser)
    add_logging_args(parser)
    add_server_args(parser)
    metrics_port.add_args(parser)
    for name in backend_names:
        try:
            cls = load_backend(name)
        except (ImportError, UsageError) as e:   # a module that is not there: its flags are absent
            log.debug("backend %s unavailable: %s", name, e)   # (run() names the problem)
            continue
        if hasattr(cls, "add_args"):
            before = len(parser._actions)
            cls.add_args(parser)
            if name in HIDDEN:    # usable, not shown
                for action in parser._actions[before:]:
                    action.help = argparse.SUPPRESS


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("miner", help="run a miner (test, embedded LLM, Hugging Face, OpenAI, vLLM)",
                              description="Run an SN1 miner: serve signed, streamed chat completions.")
    one_line_errors(p)
    plugin = plugin_in_argv(sys.argv[1:])     # `sn1 miner --backend my_miner:MyMiner`: its flags too
    _add_common(p, list(BACKENDS) + ([plugin] if plugin else []), None)
    p.set_defaults(func=lambda args: run(nest(args)))
    return p


def _build(backend: str | None, default_backend: str | None, prog: str | None) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=prog, description="Run an SN1 miner.")
    _add_common(parser, [backend] if backend in BACKENDS or is_plugin(backend) else [], default_backend)
    return parser


def main(argv: list[str] | None = None, default_backend: str | None = None) -> int:
    """Entry point of `neurons/miners/*/miner.py`: ``sys.exit(main(default_backend="hf"))``."""
    from ..errors import run as run_command

    argv = sys.argv[1:] if argv is None else list(argv)
    pre = OneLineErrorParser(prog=os.path.basename(sys.argv[0]) or None, add_help=False)
    pre.add_argument("--backend", default=default_backend)
    known, _ = pre.parse_known_args(argv)
    parser = _build(known.backend, default_backend, os.path.basename(sys.argv[0]) or None)
    args = parser.parse_args(argv)
    return run_command(lambda a: run(nest(a)), args)


# ---- running ----------------------------------------------------------------------------------

def run(config) -> int:
    from ..chain import ChainError, connect, load_wallet, register_hint

    setup_logging(config)
    settings_check(config)
    backend_cls = load_backend(get(config, "backend"))
    wallet = load_wallet(config)
    hotkey = wallet.hotkey.ss58_address
    chain = connect(config)
    try:
        metagraph = chain.metagraph()
    except ChainError as e:
        raise UsageError(f"cannot read the metagraph of netuid {get(config, 'netuid')}: {e}") from None
    uid = metagraph.uid_of(hotkey)
    if uid is None:
        raise UsageError(f"hotkey {get(config, 'wallet.hotkey')} ({hotkey}) is not registered on netuid "
                         f"{get(config, 'netuid')} ({get(config, 'subtensor.network')}); register it with "
                         f"{register_hint(config)}")
    sock = bind_socket(get(config, "axon.ip"), get(config, "axon.port"), "--axon.port", DEFAULT_AXON_PORT)
    port = sock.getsockname()[1]
    metrics_sock = metrics_port.bind(config, get(config, "axon.port"), port)   # before the model loads
    backend = backend_cls(config)
    ext_ip, ext_port = published_ip(config), get(config, "axon.external_port") or port
    try:
        chain.serve(wallet, ext_ip, ext_port)
    except ChainError as e:
        raise UsageError(f"cannot publish {ext_ip}:{ext_port} on chain: {e}") from None
    log.info("miner uid %d (%s) backend %s listening on %s:%d, published %s:%d", uid, hotkey,
             get(config, "backend"), get(config, "axon.ip"), port, ext_ip, ext_port)
    try:
        asyncio.run(serve(config, backend, hotkey, chain, metagraph, sock, metrics_sock))
    except KeyboardInterrupt:
        pass
    return 0


def settings_check(config) -> None:
    """What one flag's range cannot say (each flag's own range is checked by argparse)."""
    if get(config, "neuron.reserved_connections") >= get(config, "neuron.max_connections"):
        raise UsageError("--neuron.reserved_connections must be < --neuron.max_connections")
    metrics_port.check(config, get(config, "axon.port"))


async def serve(config, backend, hotkey: str, chain, metagraph, sock: socket.socket,
                metrics_sock: socket.socket | None = None) -> None:
    import uvicorn

    from ..protocol.connections import Admission, ConnectionGuard, ConnectionLimits, guarded_protocol
    from ..protocol.serving import raise_fd_limit
    from .server import MetagraphView, MinerSettings, build_app, validator_request

    view = MetagraphView(chain, interval=get(config, "neuron.metagraph_refresh"),
                         min_refresh=min(5.0, get(config, "neuron.metagraph_refresh")), own_hotkey=hotkey)
    view.set(metagraph)
    app = build_app(backend, hotkey, view, MinerSettings.from_config(config))
    # Idle connections are bounded by the guard (deadlines, per-address and idle caps); the
    # request limit counts requests only, with a reserve for registered validators.
    limits = ConnectionLimits(header_timeout=get(config, "neuron.header_timeout"),
                              keepalive_timeout=get(config, "neuron.keepalive_timeout"),
                              max_per_ip=get(config, "neuron.max_connections_per_ip"),
                              max_idle=get(config, "neuron.max_idle_connections"),
                              max_per_validator_ip=get(config, "neuron.max_connections_per_validator_ip"),
                              refuse_chunked=True)
    guard = ConnectionGuard(limits)
    app.state.guard = guard
    raise_fd_limit(get(config, "neuron.max_connections") + limits.max_idle + 64)
    admitted = Admission(app, get(config, "neuron.max_connections"), get(config, "neuron.reserved_connections"),
                         trusted=lambda scope: validator_request(view, scope))
    server = uvicorn.Server(uvicorn.Config(admitted, log_config=None, access_log=False, lifespan="off",
                                           timeout_graceful_shutdown=3, http=guarded_protocol(guard),
                                           timeout_keep_alive=limits.keepalive_timeout))
    refresher = asyncio.create_task(view.run())
    metrics_task = await metrics_port.serve(metrics_sock, app.state.chat.metrics.attach(guard, admitted).collector)
    try:
        await server.serve(sockets=[sock])
    finally:
        refresher.cancel()
        if metrics_task is not None:
            metrics_task.cancel()
        close = getattr(backend, "aclose", None)
        if close is not None:
            await close()
