"""`sn1 sandbox init|register|stake|set-weights|metagraph` — a local subnet, mirroring btcli.

Light module: the sandbox (numpy, sqlite) and bittensor load only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..config import (DEFAULT_NETUID, DEFAULT_SANDBOX_PATH, NETUID, UID, Bounded, add_logging_args,
                      add_wallet_args, at_least, expand, flag, fraction, nest, one_line_errors, positive,
                      setup_logging)
from ..errors import UsageError


def _common(p: argparse.ArgumentParser) -> None:
    flag(p, "--netuid", type=NETUID, default=DEFAULT_NETUID, help="subnet uid")
    flag(p, "--sandbox.path", default=DEFAULT_SANDBOX_PATH,
         help="folder holding the sandbox state")
    add_logging_args(p)


def add_parser(subparsers) -> None:
    top = subparsers.add_parser("sandbox", help="a local subnet on this machine (no TAO needed)",
                                description=__doc__.splitlines()[0])
    one_line_errors(top)
    sub = top.add_subparsers(dest="sandbox_command", metavar="COMMAND")
    top.set_defaults(func=lambda args: (top.print_help(), 2)[1])

    p = sub.add_parser("init", help="create a sandbox subnet")
    one_line_errors(p)
    _common(p)
    p.add_argument("--tempo", type=at_least(1), default=None, help="blocks between consensus epochs (default 100)")
    p.add_argument("--block-time", type=positive(), default=None, help="seconds per block (default 12)")
    p.add_argument("--max-uids", type=Bounded(int, 1, 65535), default=None, help="uids in the subnet (default 256)")
    p.add_argument("--max-validators", type=at_least(0), default=None, help="validator permits, top-K stake (default 64)")
    p.add_argument("--immunity-period", type=at_least(0), default=None,
                   help="blocks a new registration cannot be replaced (default 5000)")
    p.add_argument("--min-allowed-weights", type=at_least(0), default=None,
                   help="fewest uids a validator must weigh (default 1)")
    p.add_argument("--max-weight-limit", type=fraction(low_open=True), default=None, help="max share of one uid, 0..1 (default 1)")
    p.add_argument("--weights-rate-limit", type=at_least(0), default=None,
                   help="blocks between two set_weights of one hotkey (default 100)")
    p.add_argument("--emission-per-block", type=at_least(0, float), default=None, help="TAO emitted per block (default 1)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("register", help="register a wallet's hotkey; prints its uid")
    one_line_errors(p)
    _common(p)
    add_wallet_args(p)
    p.add_argument("--stake", type=at_least(0, float), default=0.0, help="TAO staked to the hotkey on registration")
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("stake", help="add stake to a registered hotkey")
    one_line_errors(p)
    _common(p)
    add_wallet_args(p)
    p.add_argument("--amount", type=at_least(0, float), required=True, help="TAO to add")
    p.set_defaults(func=cmd_stake)

    p = sub.add_parser("set-weights", help="set a validator hotkey's weights (what a validator does each epoch)")
    one_line_errors(p)
    _common(p)
    add_wallet_args(p)
    p.add_argument("--uids", nargs="+", type=UID, required=True, help="uids to weigh")
    p.add_argument("--weights", nargs="+", type=at_least(0, float), required=True, help="one non-negative weight per uid")
    p.add_argument("--version-key", type=Bounded(int, 0, 2**64 - 1), default=0, help="weights version key")
    p.set_defaults(func=cmd_set_weights)

    p = sub.add_parser("metagraph", help="print the subnet's neurons (like `btcli subnets metagraph`)")
    one_line_errors(p)
    _common(p)
    p.add_argument("--json", action="store_true", help="one JSON object per uid (a JSON list)")
    p.set_defaults(func=cmd_metagraph)


def _chain(config):
    from .sandbox import SandboxChain

    return SandboxChain(expand(config.sandbox.path), config.netuid)


def _chain_errors(fn):
    """A chain refusal in a command is bad input: one line, exit 2."""
    def run(args):
        from .base import ChainError

        config = nest(args)
        setup_logging(config)
        try:
            return fn(config)
        except ChainError as e:
            raise UsageError(str(e)) from None
    return run


@_chain_errors
def cmd_init(config) -> int:
    from .sandbox import DEFAULT_TEMPO, SandboxChain

    params = {k: v for k, v in {
        "max_uids": config.max_uids, "max_validators": config.max_validators,
        "immunity_period": config.immunity_period, "min_allowed_weights": config.min_allowed_weights,
        "max_weight_limit": config.max_weight_limit, "weights_rate_limit": config.weights_rate_limit,
        "emission_per_block": config.emission_per_block}.items() if v is not None}
    path = expand(config.sandbox.path)
    chain = SandboxChain.init(path, config.netuid, tempo=DEFAULT_TEMPO if config.tempo is None else config.tempo,
                              block_time=config.block_time, **params)
    hp = chain.hyperparams()
    print(f"sandbox subnet {chain.netuid} initialised at {path} "
          f"(block time {chain._block_time:g} s, tempo {hp.tempo}, max uids {hp.max_uids}, "
          f"max validators {hp.max_validators}, immunity {hp.immunity_period} blocks)")
    return 0


@_chain_errors
def cmd_register(config) -> int:
    from . import load_wallet

    stake = config.stake
    chain = _chain(config)
    wallet = load_wallet(config)
    reg = chain.register_neuron(wallet, stake)
    if not reg.new:
        print(f"hotkey {wallet.hotkey.ss58_address} already registered on sandbox netuid {chain.netuid} "
              f"as uid {reg.uid}", file=sys.stderr)
    elif reg.replaced:
        print(f"subnet full: replaced uid {reg.uid} (hotkey {reg.replaced})", file=sys.stderr)
    print(reg.uid)
    return 0


@_chain_errors
def cmd_stake(config) -> int:
    from . import load_wallet

    amount = config.amount
    if amount == 0:
        raise UsageError("--amount must be greater than 0")
    chain = _chain(config)
    wallet = load_wallet(config)
    total = chain.stake(wallet, amount)
    print(f"staked {amount:g} TAO to {wallet.hotkey.ss58_address}; it now holds {total:.4f} TAO")
    return 0


@_chain_errors
def cmd_set_weights(config) -> int:
    from . import load_wallet

    uids, weights = config.uids, config.weights
    chain = _chain(config)
    wallet = load_wallet(config)
    chain.set_weights(wallet, uids, weights, version_key=config.version_key)
    stored = chain.weights().get(chain.metagraph().uid_of(wallet.hotkey.ss58_address), {})
    print("weights set: " + ", ".join(f"uid {u}: {w:.4f}" for u, w in sorted(stored.items())))
    return 0


@_chain_errors
def cmd_metagraph(config) -> int:
    chain = _chain(config)
    mg = chain.metagraph()
    if config.json:
        print(json.dumps([n.to_json() for n in mg.neurons], indent=1))
    else:
        print(format_table(mg, chain.hyperparams()))
    return 0


def format_table(mg, hp) -> str:
    """The layout of `btcli subnets metagraph` (hotkeys shortened like btcli does)."""
    head = ["UID", "STAKE(τ)", "RANK", "TRUST", "CONSENSUS", "INCENTIVE", "DIVIDENDS", "EMISSION(τ)",
            "VPERMIT", "UPDATED", "AXON", "HOTKEY", "COLDKEY"]
    rows = []
    for n in mg.neurons:
        rows.append([str(n.uid), f"{n.stake:.4f}", f"{n.rank:.5f}", f"{n.trust:.5f}", f"{n.consensus:.5f}",
                     f"{n.incentive:.5f}", f"{n.dividends:.5f}", f"{n.emission:.6f}",
                     "*" if n.validator_permit else "", str(mg.block - n.last_update),
                     n.endpoint or "none", n.hotkey[:10], n.coldkey[:10]])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.rjust(w) if i < 10 else c.ljust(w)   # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    total = sum(n.stake for n in mg.neurons)
    out = [f"Metagraph: net: sandbox:{mg.netuid}, block: {mg.block}, N: {mg.n}/{hp.max_uids}, "
           f"stake: τ{total:.4f}, tempo: {hp.tempo}", line(head)]
    out += [line(r) for r in rows]
    if not rows:
        out.append("(no neurons registered yet: `sn1 sandbox register --wallet.name W --wallet.hotkey H`)")
    return "\n".join(out)
