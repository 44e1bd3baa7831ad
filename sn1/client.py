"""`sn1 client` / `scripts/client.py`: ask miners a question and watch their streams.

    python scripts/client.py --uids 1 2 --wallet_name W --hotkey H --message "..." [--netuid 102 --network test]

(defaults, as for every command: --netuid 1 --network finney)

Queries the uids from a *different* registered hotkey (a miner refuses
unregistered callers, and a hotkey cannot query itself), prints every chunk
as it arrives with its latency, then per uid its status and times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from .config import (DEFAULT_NETUID, DEFAULT_NETWORK, DEFAULT_SANDBOX_PATH, DEFAULT_WALLET_PATH, NETUID, NETWORKS,
                     UID, OneLineErrorParser, add_logging_args, at_least, nest, one_line_errors, positive,
                     setup_logging)
from .errors import UsageError


def _add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--uids", type=UID, nargs="+", required=True, help="miner uids to query")
    p.add_argument("--wallet_name", "--wallet.name", dest="wallet.name", default="default",
                   help="wallet (coldkey) of the querying hotkey")
    p.add_argument("--hotkey", "--wallet.hotkey", dest="wallet.hotkey", default="default",
                   help="querying hotkey (registered, not the miner's own)")
    p.add_argument("--wallet.path", dest="wallet.path", default=DEFAULT_WALLET_PATH, help="wallets folder")
    p.add_argument("--message", default="What is the meaning of life?", help="what to ask")
    p.add_argument("--role", default="user", choices=["user", "system", "assistant"],
                   help="role of the message")
    p.add_argument("--netuid", type=NETUID, default=DEFAULT_NETUID, help="subnet uid (102: the streaming testnet)")
    p.add_argument("--network", "--subtensor.network", dest="subtensor.network", default=DEFAULT_NETWORK,
                   choices=NETWORKS, help="finney | test | local | sandbox")
    p.add_argument("--subtensor.chain_endpoint", dest="subtensor.chain_endpoint", default=None,
                   help="websocket endpoint of a subtensor node")
    p.add_argument("--sandbox.path", dest="sandbox.path", default=DEFAULT_SANDBOX_PATH,
                   help="sandbox chain folder (with --network sandbox)")
    p.add_argument("--timeout", type=positive(), default=10.0, help="seconds each miner may stream")
    p.add_argument("--max_tokens", type=at_least(1), default=256, help="max_tokens asked of the miners")
    p.add_argument("--json", action="store_true", help="print one JSON result per uid instead of text")
    add_logging_args(p)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("client", help="query miners and print their streams",
                              description=__doc__.splitlines()[0])
    one_line_errors(p)
    _add_args(p)
    p.set_defaults(func=lambda args: run(nest(args)))
    return p


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = OneLineErrorParser(prog=prog, description=__doc__.splitlines()[0])
    _add_args(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of scripts/client.py."""
    from .errors import run as run_command

    args = build_parser("client.py").parse_args(argv)
    return run_command(lambda a: run(nest(a)), args)


def run(config) -> int:
    from .chain import ChainError, connect, load_wallet
    from .llm.base import GenParams

    setup_logging(config)
    wallet = load_wallet(config)
    try:
        mg = connect(config).metagraph()
    except ChainError as e:
        raise UsageError(f"cannot read the metagraph of netuid {config.netuid}: {e}") from None
    me = wallet.hotkey.ss58_address
    targets = []
    for uid in dict.fromkeys(config.uids):
        if not 0 <= uid < mg.n:
            raise UsageError(f"uid {uid} is not on netuid {config.netuid} (uids 0..{mg.n - 1})")
        if mg.neurons[uid].hotkey == me:
            print(f"note: skipping uid {uid}: it is your own hotkey (query it from a different one)",
                  file=sys.stderr)
            continue
        targets.append(mg.neurons[uid])
    if not targets:
        raise UsageError("nothing to query: every uid given is your own hotkey")
    messages = [{"role": config.role, "content": config.message}]
    params = GenParams(max_tokens=config.max_tokens)
    results = asyncio.run(_query(wallet, targets, messages, params, config.timeout, quiet=config.json))
    for r in results:
        if config.json:
            print(json.dumps(r.to_dict(), ensure_ascii=False))
        else:
            print(summary(r))
    return 0 if all(r.status in ("ok", "timeout") for r in results) else 1


async def _query(wallet, targets, messages, params, timeout, quiet: bool):
    from .validator.query import MinerClient

    def show(r, text, t):
        print(f"[uid {r.uid} +{t:.3f}s] {text!r}", flush=True)

    if not quiet:
        for n in targets:
            print(f"querying uid {n.uid} ({n.hotkey}) at {n.endpoint or 'no endpoint'}", flush=True)
    async with MinerClient(wallet) as client:
        return await client.query(targets, messages, params, timeout=timeout,
                                  on_chunk=None if quiet else show)


def summary(r) -> str:
    ttfc = "-" if r.time_to_first_chunk is None else f"{r.time_to_first_chunk:.3f}s"
    head = (f"uid {r.uid}: {r.status}"
            + (f" (HTTP {r.status_code})" if r.status_code not in (None, 200) else "")
            + f", {r.tokens} tokens in {len(r.chunk_times)} chunks, first chunk {ttfc}, "
              f"total {r.process_time:.3f}s" + (", TRUNCATED" if r.truncated else ""))
    lines = [head]
    if r.message:
        lines.append(f"  {r.message}")
    if r.completion:
        lines.append("  completion: " + r.completion.replace("\n", "\n  "))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
