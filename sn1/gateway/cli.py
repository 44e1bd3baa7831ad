"""`sn1 gateway` (and `python neurons/gateway.py`): serve the subnet as an OpenAI-compatible API.

`sn1 gateway keys create|list|update|revoke` manage its API keys, `sn1 gateway records` shows the
latest requests; with `--gateway.redis_url` both act on the replicas' shared Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
import time

from ..config import (LISTEN_PORT, UID, OneLineErrorParser, add_chain_args, add_logging_args, add_wallet_args,
                      at_least, expand, flag, get, nest, one_line_errors, positive, setup_logging)
from ..errors import UsageError
from ..protocol import metrics as metrics_port
from ..protocol.serving import bind_socket

log = logging.getLogger("sn1.gateway")

DEFAULT_PATH = "~/.sn1/gateway"
DEFAULT_PORT = 8093


def gateway_folder(text: str) -> str:
    """``--gateway.path``: a folder (the database, gateway.db, and the records live in it). A file,
    or a name ending in .db (what older docs showed), is refused with the folder to use instead."""
    path = expand(text)
    if os.path.isfile(path) or (text.endswith(".db") and not os.path.isdir(path)):
        raise argparse.ArgumentTypeError(
            f"takes a folder (the gateway keeps gateway.db and its records in it), got the file {text}; "
            f"use --gateway.path {os.path.dirname(path) or '.'}")
    return text


def add_path_arg(parser) -> None:
    flag(parser, "--gateway.path", type=gateway_folder, default=DEFAULT_PATH,
         help="folder of the gateway's database (gateway.db: keys and records)")
    flag(parser, "--gateway.redis_url", default=None,
         help="redis://HOST:PORT/DB: keys, limits, usage, records and routing state shared in Redis, "
              "so several gateway processes act as one (default: the SQLite file under --gateway.path)")


def add_args(parser: argparse.ArgumentParser) -> None:
    add_wallet_args(parser)
    add_chain_args(parser)
    add_logging_args(parser)
    add_path_arg(parser)
    g = "--gateway."
    flag(parser, g + "ip", default="0.0.0.0", help="address to listen on")
    flag(parser, g + "port", type=LISTEN_PORT, default=DEFAULT_PORT, help="port to listen on")
    flag(parser, g + "first_chunk_timeout", type=positive(), default=5.0,
         help="seconds a miner has to send its first chunk before the next one is tried")
    flag(parser, g + "timeout", type=positive(), default=60.0, help="seconds a miner has for a whole answer")
    flag(parser, g + "max_attempts", type=at_least(1), default=3, help="miners tried per request before a 503")
    flag(parser, g + "max_tokens", type=at_least(1), default=256,
         help="completion tokens per request: the default and the most a client may ask for")
    flag(parser, g + "uids", type=UID, nargs="+", default=None, help="route only to these miner uids")
    flag(parser, g + "metagraph_refresh", type=positive(), default=60.0, help="seconds between metagraph reads")
    flag(parser, g + "log_content", action="store_true", help="keep prompts and answers in the records")
    flag(parser, g + "validator_state", default=None,
         help="folder (or state.json) of a validator running beside the gateway: its scores steer routing")
    flag(parser, g + "replica", default=None,
         help="this replica's name, the 'replica' label of its metrics and records (default: HOSTNAME:PORT)")
    flag(parser, g + "records_max", type=at_least(1000), default=1_000_000,
         help="with --gateway.redis_url: records kept in Redis's shared stream (about; oldest dropped)")
    metrics_port.add_args(parser)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("gateway", help="serve the subnet as an OpenAI-compatible API (keys, limits, chat page)",
                              description=__doc__.splitlines()[0])
    one_line_errors(p)
    add_args(p)
    add_keys_parsers(p)
    p.set_defaults(func=lambda args: run(nest(args)))
    return p


def add_keys_parsers(p: argparse.ArgumentParser) -> None:
    sp = p.add_subparsers(dest="gateway_command", metavar="keys|records")
    rec = sp.add_parser("records", help="the latest requests (JSON lines, newest first)")
    rec.add_argument("--last", type=at_least(1), default=20, help="how many (default 20)")
    rec.add_argument("--key", default=None, help="only this key's (by name)")
    rec.set_defaults(func=cmd_records)
    _store_flags(rec)
    keys = sp.add_parser("keys", help="create, list, update or revoke API keys")
    one_line_errors(keys)
    sub = keys.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    c = sub.add_parser("create", help="create a key; it is printed once, alone on the last line")
    c.add_argument("--name", required=True, help="who the key is for (unique among active keys)")
    c.add_argument("--rpm", type=at_least(1), default=None, help="requests per minute (default 60)")
    c.add_argument("--tokens-per-day", type=at_least(1), default=None,
                   help="completion tokens per UTC day (default 100000)")
    c.set_defaults(func=cmd_create)
    ls = sub.add_parser("list", help="list keys (never their text) with today's token use")
    ls.add_argument("--all", action="store_true", help="include revoked keys")
    ls.set_defaults(func=cmd_list)
    r = sub.add_parser("revoke", help="revoke a key by name (takes effect on the next request)")
    r.add_argument("--name", required=True)
    r.set_defaults(func=cmd_revoke)
    u = sub.add_parser("update", help="change a key's limits (take effect on its next request)")
    u.add_argument("--name", required=True)
    u.add_argument("--rpm", type=at_least(1), default=None, help="new requests per minute")
    u.add_argument("--tokens-per-day", type=at_least(1), default=None, help="new completion tokens per UTC day")
    u.set_defaults(func=cmd_update)
    im = sub.add_parser("import", help="copy the keys (and today's use) of --gateway.path's SQLite file into "
                                       "--gateway.redis_url: their holders keep their keys")
    im.set_defaults(func=cmd_import)
    for q in (c, ls, r, u, im):
        _store_flags(q)


def _store_flags(q) -> None:
    one_line_errors(q)
    # SUPPRESS: when only given before `keys` (sn1 gateway --gateway.path P keys list), P is kept.
    flag(q, "--gateway.path", type=gateway_folder, default=argparse.SUPPRESS,
         help=f"as for the gateway (default {DEFAULT_PATH})")
    flag(q, "--gateway.redis_url", default=argparse.SUPPRESS, help="as for the gateway")


# ---- keys -------------------------------------------------------------------------------------

def _conn(args):
    from . import db

    return db.connect(getattr(args, "gateway.path"))


def _redis(args):
    """The shared Redis's key manager when --gateway.redis_url is given, else None (SQLite)."""
    url = getattr(args, "gateway.redis_url", None)
    if not url:
        return None
    from .store_redis import RedisKeys

    return RedisKeys(url)


def cmd_create(args) -> int:
    from . import keys

    rpm = keys.DEFAULT_RPM if args.rpm is None else args.rpm
    tpd = keys.DEFAULT_TOKENS_PER_DAY if args.tokens_per_day is None else args.tokens_per_day
    shared = _redis(args)
    key, k = shared.create(args.name, rpm, tpd) if shared else keys.create(_conn(args), args.name, rpm, tpd)
    print(f"created key {k.name!r} ({k.prefix}…): {k.rpm} requests/minute, {k.tokens_per_day} tokens/day")
    print("it is shown only now; the gateway keeps only its hash:")
    print(key)
    return 0


def cmd_list(args) -> int:
    from . import keys
    from .limits import DAY
    from .records import tokens_today

    shared = _redis(args)
    if shared:
        pairs = shared.list_keys(include_revoked=args.all)
        rows, used = [k for k, _ in pairs], {k.name: n for k, n in pairs if k.revoked is None}
    else:
        conn = _conn(args)
        rows = keys.list_keys(conn, include_revoked=args.all)
        used = tokens_today(conn, time.time() // DAY * DAY)
    print(f"{'name':<24} {'key':<12} {'rpm':>6} {'tokens/day':>11} {'used today':>11}  created (UTC)      state")
    for k in rows:
        created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(k.created))
        state = "active" if k.revoked is None else "revoked"
        print(f"{k.name:<24} {k.prefix + '…':<12} {k.rpm:>6} {k.tokens_per_day:>11} "
              f"{used.get(k.name, 0) if k.revoked is None else '-':>11}  {created:<18} {state}")
    return 0


def cmd_revoke(args) -> int:
    from . import keys

    shared = _redis(args)
    k = shared.revoke(args.name) if shared else keys.revoke(_conn(args), args.name)
    print(f"revoked key {k.name!r} ({k.prefix}…)")
    return 0


def cmd_update(args) -> int:
    from . import keys

    shared = _redis(args)
    k = (shared.update(args.name, rpm=args.rpm, tokens_per_day=args.tokens_per_day) if shared
         else keys.update(_conn(args), args.name, rpm=args.rpm, tokens_per_day=args.tokens_per_day))
    print(f"updated key {k.name!r} ({k.prefix}…): {k.rpm} requests/minute, {k.tokens_per_day} tokens/day")
    return 0


def cmd_import(args) -> int:
    from . import keys
    from .limits import DAY
    from .records import tokens_today

    shared = _redis(args)
    if shared is None:
        raise UsageError("keys import needs --gateway.redis_url (where to copy the keys to)")
    conn = _conn(args)
    used = tokens_today(conn, time.time() // DAY * DAY)
    counts: dict[str, int] = {}
    for k in keys.list_keys(conn, include_revoked=True):
        outcome = shared.import_key(k, used.get(k.name, 0))
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome == "name taken":
            print(f"not imported: {k.name!r} ({k.prefix}…): an active key of that name is already in Redis")
    print(f"{counts.get('imported', 0)} keys imported into Redis {shared.where}; "
          f"{counts.get('exists', 0)} were there already, {counts.get('name taken', 0)} skipped (name taken)")
    return 0


def cmd_records(args) -> int:
    import json

    from .records import COLUMNS

    shared = _redis(args)
    if shared:
        rows = shared.records(args.last, args.key)
    else:
        q = f"SELECT id, {', '.join(COLUMNS)} FROM records" + (" WHERE key_name = ?" if args.key else "")
        q += " ORDER BY id DESC LIMIT ?"
        rows = [{k: v for k, v in dict(r).items() if v is not None}
                for r in _conn(args).execute(q, ((args.key,) if args.key else ()) + (args.last,))]
    for r in rows:
        print(json.dumps(r, ensure_ascii=False))
    return 0


# ---- serving ----------------------------------------------------------------------------------

def run(config) -> int:
    from ..chain import ChainError, connect, load_wallet, register_hint
    from . import db

    setup_logging(config)
    wallet = load_wallet(config)
    chain = connect(config)
    try:
        metagraph = chain.metagraph()
    except ChainError as e:
        raise UsageError(f"cannot read the metagraph of netuid {get(config, 'netuid')}: {e}") from None
    hotkey = wallet.hotkey.ss58_address
    if metagraph.uid_of(hotkey) is None:
        log.warning("hotkey %s is not registered on netuid %s: miners will refuse its requests; "
                    "register it with %s", hotkey, get(config, "netuid"), register_hint(config))
    redis_url = get(config, "gateway.redis_url")
    if redis_url:
        from .store_redis import check_url

        check_url(redis_url)
    conn = db.connect(get(config, "gateway.path"))
    metrics_port.check(config, get(config, "gateway.port"))
    sock = bind_socket(get(config, "gateway.ip"), get(config, "gateway.port"), "--gateway.port", DEFAULT_PORT)
    metrics_sock = metrics_port.bind(config, get(config, "gateway.port"), sock.getsockname()[1])
    try:
        asyncio.run(serve(config, wallet, chain, metagraph, conn, sock, metrics_sock))
    except KeyboardInterrupt:
        pass
    return 0


async def serve(config, wallet, chain, metagraph, conn, sock, metrics_sock=None) -> None:
    import uvicorn

    from ..protocol.auth import hotkey_signer
    from ..protocol.budget import budgeted_client
    from .app import ChatEndpoint, build_app
    from .metrics import Metrics
    from .relay import Relay, RelaySettings
    from .routing import Router
    from .upstream import wire_allowance
    from .scores import read_scores
    from .view import MetagraphView

    uids = get(config, "gateway.uids")
    router = Router(wallet.hotkey.ss58_address, uids=set(uids) if uids else None)
    state_path = get(config, "gateway.validator_state")
    if state_path:
        state_path = expand(state_path)
        router.set_scores(read_scores(state_path, metagraph))
    router.update(metagraph)
    store = make_store(config, conn, sock)
    await store.start(router)
    # No keep-alive: httpcore may hand out a pooled connection the miner is closing (ReadError), which
    # here would cost a needless failover; a fresh connection on a LAN costs well under a millisecond.
    settings = RelaySettings(first_chunk_timeout=get(config, "gateway.first_chunk_timeout"),
                             timeout=get(config, "gateway.timeout"),
                             max_attempts=get(config, "gateway.max_attempts"),
                             log_content=bool(get(config, "gateway.log_content")))
    # Every byte a miner sends counts (sn1.protocol.budget): 1xx floods and HTTP framing too.
    http = budgeted_client(4096, wire_allowance(settings.max_answer_bytes))
    metrics = Metrics(replica=replica_name(config, sock), public=metrics_sock is None)
    relay = Relay(router, http, hotkey_signer(wallet), metrics, settings)
    chat = ChatEndpoint(relay, store, max_tokens=get(config, "gateway.max_tokens"))

    async def read_validator_scores(mg):
        router.set_scores(await asyncio.to_thread(read_scores, state_path, mg))

    view = MetagraphView(chain, router, interval=get(config, "gateway.metagraph_refresh"),
                         on_read=read_validator_scores if state_path else None)
    view.set(metagraph)
    relay.unavailable = lambda: (view.no_miner(), view.retry_after())
    # the store's "status" (Redis unreachable) overrides the view's: either makes the gateway unavailable
    app = build_app(chat, health=lambda: {**view.health(), "validator_scores": len(router.scores),
                                          **store.health()})

    port = sock.getsockname()[1]
    log.info("gateway on http://%s:%d (hotkey %s): %d miners to route to, %s",
             get(config, "gateway.ip"), port, wallet.hotkey.ss58_address, len(router.candidates),
             f"shared state in Redis {store.where} as replica {store.replica}" if get(config, "gateway.redis_url")
             else f"database {expand(get(config, 'gateway.path'))}")
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                                           timeout_graceful_shutdown=3))
    refresher = asyncio.create_task(view.run())
    metrics_task = await metrics_port.serve(metrics_sock, metrics.collector)
    try:
        await server.serve(sockets=[sock])
    finally:
        refresher.cancel()
        if metrics_task is not None:
            metrics_task.cancel()
        await http.aclose()
        await store.close()


def replica_name(config, sock) -> str:
    """--gateway.replica, or HOSTNAME:PORT: the label of this process's metrics and records."""
    return get(config, "gateway.replica") or f"{socket.gethostname()}:{sock.getsockname()[1]}"


def make_store(config, conn, sock):
    """The SQLite store (one process per database), or with --gateway.redis_url the shared Redis one."""
    from .relay import DEADLINE_GRACE
    from .store import SqliteStore

    url = get(config, "gateway.redis_url")
    if not url:
        return SqliteStore(conn, get(config, "gateway.path"))
    from .store_redis import RedisStore

    conn.close()
    # A reservation lapses (its tokens return) this long after admission if its request never settles.
    hold = (get(config, "gateway.max_attempts") * get(config, "gateway.first_chunk_timeout")
            + get(config, "gateway.timeout") + DEADLINE_GRACE + 10)
    return RedisStore(url, replica=replica_name(config, sock), hold=hold, folder=get(config, "gateway.path"),
                      records_max=get(config, "gateway.records_max"))


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python neurons/gateway.py`."""
    from ..errors import run as run_command

    parser = OneLineErrorParser(prog=os.path.basename(sys.argv[0]) or "gateway",
                                description="Serve the subnet as an OpenAI-compatible API.")
    add_args(parser)
    add_keys_parsers(parser)
    parser.set_defaults(func=lambda args: run(nest(args)))
    args = parser.parse_args(argv)
    return run_command(args.func, args)
