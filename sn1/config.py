"""Command-line configuration with the seed's dotted flags (``--wallet.name``).

Every concern adds its own flags with an ``add_*_args(parser)`` function next to
its code; this module holds the shared ones and turns the flat argparse result
into a nested namespace: ``config.wallet.name``, ``config.neuron.timeout``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
from types import SimpleNamespace
from typing import Any, Sequence

DEFAULT_WALLET_PATH = "~/.bittensor/wallets"
DEFAULT_SANDBOX_PATH = "~/.sn1/sandbox"
# One set of defaults for every command (neurons, client, sandbox, gateway).
DEFAULT_NETUID = 1
DEFAULT_NETWORK = "finney"
NETWORKS = ("finney", "test", "local", "sandbox")


class Bounded:
    """An argparse ``type`` that parses a number and checks its range at start.

    A bad value is one line naming the flag and the allowed range (argparse adds the
    flag: ``argument --neuron.timeout: must be > 0, got -5``) and exit 2, before any work.
    """

    def __init__(self, kind: type, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False, note: str = ""):
        self.kind, self.low, self.high = kind, low, high
        self.low_open, self.high_open, self.note = low_open, high_open, note
        self.__name__ = kind.__name__      # argparse names the type in its own messages

    def describe(self) -> str:
        fmt = (lambda v: str(int(v))) if self.kind is int else (lambda v: f"{v:g}")
        lo, hi = (None if v is None else fmt(v) for v in (self.low, self.high))
        if lo is not None and hi is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            text = f"in {left}{lo}, {hi}{right}"
        elif lo is not None:
            text = f"{'>' if self.low_open else '>='} {lo}"
        elif hi is not None:
            text = f"{'<' if self.high_open else '<='} {hi}"
        else:
            text = "a finite number"
        return text + (f" ({self.note})" if self.note else "")

    def __call__(self, text: str):
        what = "an integer" if self.kind is int else "a number"
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {what} {self.describe()}, got {text!r}") from None
        if not math.isfinite(value) or \
                (self.low is not None and (value <= self.low if self.low_open else value < self.low)) or \
                (self.high is not None and (value >= self.high if self.high_open else value > self.high)):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text}")
        return value


def positive(kind: type = float) -> Bounded:
    return Bounded(kind, 0, low_open=True)


def at_least(low: float, kind: type = int, note: str = "") -> Bounded:
    return Bounded(kind, low, note=note)


def fraction(low_open: bool = False) -> Bounded:
    """A probability-like value in [0, 1] (or (0, 1])."""
    return Bounded(float, 0, 1, low_open=low_open)


PORT = Bounded(int, 1, 65535)
LISTEN_PORT = Bounded(int, 0, 65535, note="0: any free port")
NETUID = Bounded(int, 0, 65535)
SEED = Bounded(int, 0, 2**32 - 1)
UID = Bounded(int, 0, 65535)


def flag(parser: argparse.ArgumentParser, name: str, **kw: Any) -> None:
    """Add ``--a.b`` stored under dest ``a.b`` (ignored if already defined).

    Numeric flags must carry a range (a ``Bounded`` type): tests/test_flags.py checks
    that every numeric flag of every command refuses out-of-range values.
    """
    if any(name in a.option_strings for a in parser._actions):
        return
    parser.add_argument(name, dest=name.lstrip("-"), **kw)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows every flag's default (not for flags whose default is None or False)."""

    def _get_help_string(self, action):
        help_text = action.help or ""
        if "%(default)" in help_text or action.default is None or action.default is False \
                or action.default == argparse.SUPPRESS or not action.option_strings:
            return help_text
        return help_text + " (default: %(default)s)"


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes print one line, ``error: PROG: MESSAGE``, and exit 2
    (like every other bad input) instead of the whole usage; ``--help`` still prints full help,
    with defaults. Sub-parsers made through its ``add_subparsers()`` are of this class too."""

    def __init__(self, *args, **kw):
        kw.setdefault("formatter_class", HelpFormatter)
        # `--neuron.max_step 5` must not silently mean `--neuron.max_steps 5`: every
        # abbreviation is refused (and answered with the nearest flag, below).
        kw.setdefault("allow_abbrev", False)
        super().__init__(*args, **kw)

    def parse_known_args(self, args=None, namespace=None):
        self._sn1_args = list(sys.argv[1:] if args is None else args)
        ns, extras = super().parse_known_args(args, namespace)
        # The innermost (sub-)command that left flags unparsed: its flags are the ones to suggest.
        # (A sub-parser's namespace is copied into its parent's, so this reaches the top.)
        if extras and getattr(ns, _OWNER, None) is None:
            setattr(ns, _OWNER, self)
        return ns, extras

    def parse_args(self, args=None, namespace=None):
        ns, extras = self.parse_known_args(args, namespace)
        owner = vars(ns).pop(_OWNER, None) or self
        if extras:
            self.error(unrecognized(owner, extras))
        return ns

    def error(self, message: str):
        # A mistyped flag can surface as another error: `sn1 gateway --gateway.prot 9000` leaves
        # 9000 to be read as a sub-command ("invalid choice"), `keys create --nam x` misses
        # --name ("required"). The flag is the mistake to report.
        args = getattr(self, "_sn1_args", [])
        known = set(option_strings(self))
        unknown = [a for a in args if a.startswith("--") and a.split("=", 1)[0] not in known]
        choice = re.match(r"argument [^:]+: invalid choice: '(.*?)'", message)
        if choice and any(v == choice.group(1) and i > 0 and args[i - 1] in unknown
                          for i, v in enumerate(args)):
            message = unrecognized(self, unknown)
        elif message.startswith("the following arguments are required") and unknown:
            message = unrecognized(self, unknown)
        one_line_error(self, message)


_OWNER = "_sn1_unparsed_by"


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings if o.startswith("--")]


def unrecognized(parser: argparse.ArgumentParser, extras: Sequence[str]) -> str:
    """argparse's "unrecognized arguments: ..." with the nearest flag of ``parser`` for the first
    unknown one (`--neuron.max_step` -> `did you mean --neuron.max_steps?`)."""
    import difflib

    message = f"unrecognized arguments: {' '.join(extras)}"
    for arg in extras:
        if not arg.startswith("--"):
            continue
        name = arg.split("=", 1)[0]
        known = option_strings(parser)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if not close:   # a prefix of one flag only (an abbreviation): that flag
            close = [o for o in known if o.startswith(name)][:1] if \
                sum(o.startswith(name) for o in known) == 1 else []
        if close:
            message += f"; did you mean {close[0]}?"
            if name in close[0] and close[0].startswith(name):
                message += " (abbreviated flags are not accepted)"
        break
    return message


def one_line_error(parser: argparse.ArgumentParser, message: str):
    print(f"error: {parser.prog}: {message}", file=sys.stderr)
    sys.exit(2)


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The same for a parser made elsewhere (``subparsers.add_parser(...)`` of a plain parser)."""
    parser.allow_abbrev = False
    if not isinstance(parser, OneLineErrorParser):     # those do it already (and suggest flags)
        parser.error = lambda message: one_line_error(parser, message)   # type: ignore[method-assign]
    return parser


def add_wallet_args(parser: argparse.ArgumentParser) -> None:
    flag(parser, "--wallet.name", default="default", help="wallet (coldkey) name")
    flag(parser, "--wallet.hotkey", default="default", help="hotkey name")
    flag(parser, "--wallet.path", default=DEFAULT_WALLET_PATH, help="wallets folder")


def add_chain_args(parser: argparse.ArgumentParser, default_netuid: int = DEFAULT_NETUID) -> None:
    flag(parser, "--netuid", type=NETUID, default=default_netuid, help="subnet uid")
    flag(parser, "--subtensor.network", default=DEFAULT_NETWORK, choices=NETWORKS,
         help="finney | test | local | sandbox")
    flag(parser, "--subtensor.chain_endpoint", default=None,
         help="websocket endpoint of a subtensor node (overrides the network's)")
    flag(parser, "--sandbox.path", default=DEFAULT_SANDBOX_PATH,
         help="folder holding the sandbox chain state")


def add_logging_args(parser: argparse.ArgumentParser) -> None:
    flag(parser, "--logging.debug", action="store_true", help="debug logs")
    flag(parser, "--logging.trace", action="store_true", help="trace logs (very verbose)")
    flag(parser, "--logging.logging_dir", default="~/.sn1/logs", help="where neurons keep logs and state")


def nest(ns: argparse.Namespace | dict) -> SimpleNamespace:
    """{'wallet.name': 'w'} -> namespace(wallet=namespace(name='w'))."""
    flat = vars(ns) if isinstance(ns, argparse.Namespace) else dict(ns)
    root = SimpleNamespace()
    for key, value in flat.items():
        node = root
        *parents, leaf = key.split(".")
        for p in parents:
            if not hasattr(node, p):
                setattr(node, p, SimpleNamespace())
            node = getattr(node, p)
        setattr(node, leaf, value)
    return root


def get(config: SimpleNamespace, dotted: str, default: Any = None) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = getattr(node, part, None)
        if node is None:
            return default
    return node


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> SimpleNamespace:
    config = nest(parser.parse_args(argv))
    setup_logging(config)
    return config


TRACE = 5
logging.addLevelName(TRACE, "TRACE")


def setup_logging(config: SimpleNamespace) -> None:
    if get(config, "logging.trace"):
        level = TRACE
    elif get(config, "logging.debug"):
        level = logging.DEBUG
    else:
        level = logging.INFO
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # Third-party chatter stays at WARNING unless tracing.
    if level > TRACE:
        for noisy in ("httpx", "httpcore", "urllib3", "uvicorn.access", "bittensor",
                      "sentence_transformers", "transformers"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def expand(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))
