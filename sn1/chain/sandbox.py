"""A local subnet in SQLite: many processes on one machine register, serve and set weights.

State lives in ``<sandbox.path>/chain.sqlite`` (WAL mode). Every write is one
``BEGIN IMMEDIATE`` transaction, so concurrent writers in separate processes
queue on SQLite's lock instead of losing updates. The block height comes from
the wall clock ((now - genesis) / block_time); consensus epochs (sn1.chain.yuma)
run lazily: whichever call first sees that a tempo boundary has passed runs the
missed epochs inside its transaction, so no daemon is needed.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import UsageError
from . import yuma
from .base import ChainError, Hyperparams, Metagraph, Neuron, RateLimited

log = logging.getLogger(__name__)

DB_NAME = "chain.sqlite"
FORMAT = "sn1-sandbox"
VERSION = "1"
DEFAULT_BLOCK_TIME = 12.0
DEFAULT_TEMPO = 100
MAX_CATCHUP_EPOCHS = 256      # epochs replayed in full when the sandbox sat idle; the rest repeat the last payout
BUSY_TIMEOUT_S = 30.0

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE subnets (
    netuid INTEGER PRIMARY KEY,
    tempo INTEGER NOT NULL, max_uids INTEGER NOT NULL, min_allowed_weights INTEGER NOT NULL,
    max_weight_limit REAL NOT NULL, weights_rate_limit INTEGER NOT NULL,
    immunity_period INTEGER NOT NULL, max_validators INTEGER NOT NULL,
    emission_per_block REAL NOT NULL, kappa REAL NOT NULL, bonds_moving_average REAL NOT NULL,
    last_epoch INTEGER NOT NULL,            -- block of the last epoch run
    epochs INTEGER NOT NULL DEFAULT 0,      -- how many epochs ran
    total_staked REAL NOT NULL DEFAULT 0,   -- ledger: stake added by users
    total_emitted REAL NOT NULL DEFAULT 0,  -- ledger: stake paid by epochs
    total_removed REAL NOT NULL DEFAULT 0   -- ledger: stake leaving with replaced neurons
);
CREATE TABLE neurons (
    netuid INTEGER NOT NULL, uid INTEGER NOT NULL, hotkey TEXT NOT NULL, coldkey TEXT NOT NULL,
    stake REAL NOT NULL DEFAULT 0, endpoint TEXT,
    last_update INTEGER NOT NULL, block_at_registration INTEGER NOT NULL,
    weights_set_at INTEGER, version_key INTEGER NOT NULL DEFAULT 0,
    rank REAL NOT NULL DEFAULT 0, trust REAL NOT NULL DEFAULT 0, consensus REAL NOT NULL DEFAULT 0,
    incentive REAL NOT NULL DEFAULT 0, dividends REAL NOT NULL DEFAULT 0,
    emission REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (netuid, uid), UNIQUE (netuid, hotkey)
);
CREATE TABLE weights (netuid INTEGER NOT NULL, uid INTEGER NOT NULL, dest INTEGER NOT NULL,
                      weight REAL NOT NULL, PRIMARY KEY (netuid, uid, dest));
CREATE TABLE bonds (netuid INTEGER NOT NULL, uid INTEGER NOT NULL, dest INTEGER NOT NULL,
                    bond REAL NOT NULL, PRIMARY KEY (netuid, uid, dest));
"""

HYPER_KEYS = [f.name for f in fields(Hyperparams)]
SANDBOX_KEYS = ["emission_per_block", "kappa", "bonds_moving_average"]


@dataclass(frozen=True)
class Registration:
    uid: int
    new: bool                      # False: the hotkey was already registered
    replaced: str | None = None    # hotkey that lost this uid (full subnet), if any


def db_file(path) -> str:
    return os.path.join(os.fspath(path), DB_NAME)


def _keys(wallet) -> tuple[str, str]:
    """(hotkey ss58, coldkey ss58) of a bittensor.Wallet."""
    try:
        hotkey = wallet.hotkey.ss58_address
    except Exception as e:  # noqa: BLE001 - keyfile errors come in many types
        raise UsageError(f"cannot read hotkey of wallet {getattr(wallet, 'name', wallet)!r}: {e}") from None
    try:
        coldkey = wallet.coldkeypub.ss58_address
    except Exception as e:  # noqa: BLE001
        raise UsageError(f"cannot read coldkeypub of wallet {getattr(wallet, 'name', wallet)!r}: {e}") from None
    return hotkey, coldkey


def parse_tao(value, what: str = "stake", error: type[Exception] = ChainError) -> float:
    """A finite, non-negative amount of TAO, or ``error`` naming ``what``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise error(f"{what} must be a number of TAO, got {value!r}") from None
    if not math.isfinite(x) or x < 0:
        raise error(f"{what} must be a finite, non-negative number of TAO, got {value!r}")
    return x


def _connect(file: str) -> sqlite3.Connection:
    conn = sqlite3.connect(file, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    return conn


class SandboxChain:
    """The sandbox subnet ``netuid`` stored under folder ``path``."""

    network = "sandbox"

    def __init__(self, path, netuid: int = 1, *, clock: Callable[[], float] = time.time):
        self.path = os.path.abspath(os.path.expanduser(os.fspath(path)))
        self.netuid = int(netuid)
        self.file = db_file(self.path)
        self._clock = clock
        with self._tx(write=False) as conn:
            self._genesis, self._block_time = self._check(conn)
            self._subnet(conn)

    # ---- creation -------------------------------------------------------------------------

    @classmethod
    def init(cls, path, netuid: int = 1, *, tempo: int = DEFAULT_TEMPO,
             block_time: float | None = None, clock: Callable[[], float] = time.time,
             exist_ok: bool = False, **params) -> "SandboxChain":
        """Create the sandbox at ``path`` (or add subnet ``netuid`` to it) and return it.

        ``params``: any Hyperparams field (max_uids, immunity_period, ...) and
        emission_per_block, kappa, bonds_moving_average. Raises UsageError if the
        subnet already exists (unless ``exist_ok``) or a value is invalid.
        """
        path = os.path.abspath(os.path.expanduser(os.fspath(path)))
        unknown = set(params) - set(HYPER_KEYS) - set(SANDBOX_KEYS)
        if unknown:
            raise UsageError(f"unknown sandbox parameter(s): {', '.join(sorted(unknown))}")
        hp = {**{f.name: f.default for f in fields(Hyperparams)},
              "emission_per_block": 1.0, "kappa": yuma.KAPPA,
              "bonds_moving_average": yuma.BONDS_MOVING_AVERAGE, **params, "tempo": tempo}
        _validate_params(hp, netuid, block_time)
        if os.path.exists(path) and not os.path.isdir(path):
            raise UsageError(f"--sandbox.path {path} is a file; it must name a folder")
        os.makedirs(path, exist_ok=True)
        file = db_file(path)
        conn = _connect(file)
        try:
            fresh = not conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
            if fresh:   # WAL can only be switched on outside a transaction
                conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError:
            conn.close()
            raise UsageError(f"{file} is not a sandbox state file (corrupted or foreign)") from None
        exists = False
        with _transaction(conn, "BEGIN IMMEDIATE", lambda e: UsageError(f"cannot initialise {file}: {e}")):
            if not conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                bt = DEFAULT_BLOCK_TIME if block_time is None else float(block_time)
                conn.executemany("INSERT INTO meta VALUES (?, ?)", [
                    ("format", FORMAT), ("version", VERSION),
                    ("genesis", repr(float(clock()))), ("block_time", repr(bt))])
            else:
                genesis, bt = _check_meta(conn, file)
                if block_time is not None and float(block_time) != bt:
                    raise UsageError(f"sandbox at {path} runs {bt:g} s blocks; "
                                     f"--block-time {block_time:g} differs")
                exists = conn.execute("SELECT 1 FROM subnets WHERE netuid=?", (netuid,)).fetchone()
                if exists and not exist_ok:
                    raise UsageError(f"sandbox subnet {netuid} already initialised at {path}")
            if not exists:
                genesis, bt = _check_meta(conn, file)
                block = int((clock() - genesis) / bt)
                cols = HYPER_KEYS + SANDBOX_KEYS
                conn.execute(
                    f"INSERT INTO subnets (netuid, {', '.join(cols)}, last_epoch) "
                    f"VALUES (?, {', '.join('?' * len(cols))}, ?)",
                    [netuid, *(hp[c] for c in cols), block - block % hp["tempo"]])
        return cls(path, netuid, clock=clock)

    # ---- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _tx(self, write: bool) -> Iterator[sqlite3.Connection]:
        if not os.path.exists(self.file):
            raise UsageError(f"no sandbox at {self.path}: run `sn1 sandbox init --sandbox.path {self.path} "
                             f"--netuid {self.netuid}` first")
        conn = _connect(self.file)
        with _transaction(conn, "BEGIN IMMEDIATE" if write else "BEGIN", self._db_error):
            yield conn

    def _db_error(self, e: sqlite3.DatabaseError) -> Exception:
        if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
            return ChainError(f"sandbox at {self.path} busy for {BUSY_TIMEOUT_S:g} s: {e}")
        return UsageError(f"{self.file} is not a sandbox state file (corrupted or foreign): {e}")

    def _check(self, conn) -> tuple[float, float]:
        return _check_meta(conn, self.file)

    def _subnet(self, conn) -> dict:
        cur = conn.execute("SELECT * FROM subnets WHERE netuid=?", (self.netuid,))
        row = cur.fetchone()
        if row is None:
            have = [r[0] for r in conn.execute("SELECT netuid FROM subnets ORDER BY netuid")]
            raise UsageError(f"unknown netuid {self.netuid} in sandbox {self.path} "
                             f"(have: {', '.join(map(str, have)) or 'none'}; create it with "
                             f"`sn1 sandbox init --netuid {self.netuid}`)")
        return dict(zip([d[0] for d in cur.description], row))

    def _block(self) -> int:
        return max(0, int((self._clock() - self._genesis) / self._block_time))

    def _write(self):
        """A write transaction with due epochs already run: yields (conn, subnet, block)."""
        @contextmanager
        def cm():
            with self._tx(write=True) as conn:
                block = self._block()
                sub = self._subnet(conn)
                if self._epochs_due(sub, block):
                    self._run_epochs(conn, sub, block)
                    sub = self._subnet(conn)
                yield conn, sub, block
        return cm()

    def _epochs_due(self, sub: dict, block: int) -> int:
        return block // sub["tempo"] - sub["last_epoch"] // sub["tempo"]

    def _uid_of(self, conn, hotkey: str) -> int | None:
        row = conn.execute("SELECT uid FROM neurons WHERE netuid=? AND hotkey=?",
                           (self.netuid, hotkey)).fetchone()
        return None if row is None else row[0]

    def _require_uid(self, conn, hotkey: str) -> int:
        uid = self._uid_of(conn, hotkey)
        if uid is None:
            raise ChainError(f"hotkey {hotkey} is not registered on sandbox netuid {self.netuid}")
        return uid

    # ---- consensus ------------------------------------------------------------------------

    def _run_epochs(self, conn, sub: dict, block: int) -> None:
        due = self._epochs_due(sub, block)
        n = conn.execute("SELECT COUNT(*) FROM neurons WHERE netuid=?", (self.netuid,)).fetchone()[0]
        last = block - block % sub["tempo"]
        if n == 0:
            conn.execute("UPDATE subnets SET last_epoch=?, epochs=epochs+? WHERE netuid=?",
                         (last, due, self.netuid))
            return
        stake = np.array([r[0] for r in conn.execute(
            "SELECT stake FROM neurons WHERE netuid=? ORDER BY uid", (self.netuid,))])
        W = np.zeros((n, n))
        for uid, dest, w in conn.execute("SELECT uid, dest, weight FROM weights WHERE netuid=?", (self.netuid,)):
            W[uid, dest] = w
        B = np.zeros((n, n))
        for uid, dest, b in conn.execute("SELECT uid, dest, bond FROM bonds WHERE netuid=?", (self.netuid,)):
            B[uid, dest] = b
        per_epoch = sub["tempo"] * sub["emission_per_block"]
        emitted = 0.0
        res = None
        for i in range(min(due, MAX_CATCHUP_EPOCHS)):
            permits = yuma.top_k_permits(stake, sub["max_validators"])
            res = yuma.epoch(stake, W, permits, B, kappa=sub["kappa"],
                             bonds_moving_average=sub["bonds_moving_average"], emission_total=per_epoch)
            B = res.bonds
            stake = stake + res.emission
            emitted += float(res.emission.sum())
        if due > MAX_CATCHUP_EPOCHS and res is not None:
            # a long idle stretch: the weights did not change, so each skipped epoch pays as the last
            extra = due - MAX_CATCHUP_EPOCHS
            stake = stake + extra * res.emission
            emitted += extra * float(res.emission.sum())
        conn.executemany(
            "UPDATE neurons SET stake=?, rank=?, trust=?, consensus=?, incentive=?, dividends=?, emission=? "
            "WHERE netuid=? AND uid=?",
            [(float(stake[u]), float(res.rank[u]), float(res.trust[u]), float(res.consensus[u]),
              float(res.incentive[u]), float(res.dividends[u]), float(res.emission[u]), self.netuid, u)
             for u in range(n)])
        conn.execute("DELETE FROM bonds WHERE netuid=?", (self.netuid,))
        rows, cols = np.nonzero(B)
        conn.executemany("INSERT INTO bonds VALUES (?, ?, ?, ?)",
                         [(self.netuid, int(i), int(j), float(B[i, j])) for i, j in zip(rows, cols)])
        conn.execute("UPDATE subnets SET last_epoch=?, epochs=epochs+?, total_emitted=total_emitted+? "
                     "WHERE netuid=?", (last, due, emitted, self.netuid))
        log.debug("sandbox netuid %d: ran %d epoch(s) up to block %d, emitted %.6f TAO",
                  self.netuid, due, last, emitted)

    # ---- the Chain interface --------------------------------------------------------------

    def block(self) -> int:
        return self._block()

    def hyperparams(self) -> Hyperparams:
        with self._tx(write=False) as conn:
            sub = self._subnet(conn)
        return Hyperparams(**{k: sub[k] for k in HYPER_KEYS})

    def metagraph(self) -> Metagraph:
        block = self._block()
        with self._tx(write=False) as conn:
            due = self._epochs_due(self._subnet(conn), block)
        if due > 0:
            with self._write():      # runs the due epochs
                pass
        with self._tx(write=False) as conn:
            sub = self._subnet(conn)
            cur = conn.execute("SELECT * FROM neurons WHERE netuid=? ORDER BY uid", (self.netuid,))
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r)) for r in cur.fetchall()]
        permits = yuma.top_k_permits([r["stake"] for r in rows], sub["max_validators"])
        keep = {f.name for f in fields(Neuron)}
        neurons = tuple(Neuron(**{k: v for k, v in r.items() if k in keep},
                               validator_permit=bool(permits[i])) for i, r in enumerate(rows))
        return Metagraph(netuid=self.netuid, block=self._block(), neurons=neurons)

    def register(self, wallet, stake: float = 0.0) -> int:
        return self.register_neuron(wallet, stake).uid

    def register_neuron(self, wallet, stake: float = 0.0) -> Registration:
        """Register (or find) the wallet's hotkey; in a full subnet, replace the
        lowest-emission neuron past its immunity period."""
        hotkey, coldkey = _keys(wallet)
        stake = parse_tao(stake)
        with self._write() as (conn, sub, block):
            row = conn.execute("SELECT uid, coldkey FROM neurons WHERE netuid=? AND hotkey=?",
                               (self.netuid, hotkey)).fetchone()
            if row is not None:
                if row[1] != coldkey:
                    raise ChainError(f"hotkey {hotkey} is registered under another coldkey ({row[1]})")
                return Registration(uid=row[0], new=False)
            n = conn.execute("SELECT COUNT(*) FROM neurons WHERE netuid=?", (self.netuid,)).fetchone()[0]
            replaced = None
            if n < sub["max_uids"]:
                uid = n
            else:
                uid, replaced, old_stake = self._prune_candidate(conn, sub, block)
                conn.execute("DELETE FROM neurons WHERE netuid=? AND uid=?", (self.netuid, uid))
                conn.execute("DELETE FROM weights WHERE netuid=? AND (uid=? OR dest=?)", (self.netuid, uid, uid))
                conn.execute("DELETE FROM bonds WHERE netuid=? AND (uid=? OR dest=?)", (self.netuid, uid, uid))
                conn.execute("UPDATE subnets SET total_removed=total_removed+? WHERE netuid=?",
                             (old_stake, self.netuid))
                log.info("sandbox netuid %d: uid %d replaced (hotkey %s -> %s)", self.netuid, uid, replaced, hotkey)
            conn.execute("INSERT INTO neurons (netuid, uid, hotkey, coldkey, stake, last_update, "
                         "block_at_registration) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (self.netuid, uid, hotkey, coldkey, stake, block, block))
            conn.execute("UPDATE subnets SET total_staked=total_staked+? WHERE netuid=?", (stake, self.netuid))
            return Registration(uid=uid, new=True, replaced=replaced)

    def _prune_candidate(self, conn, sub: dict, block: int) -> tuple[int, str, float]:
        # Pruning score = last epoch's emission; ties go to the oldest registration, then the lower uid.
        row = conn.execute(
            "SELECT uid, hotkey, stake FROM neurons WHERE netuid=? AND ? - block_at_registration >= ? "
            "ORDER BY emission ASC, block_at_registration ASC, uid ASC LIMIT 1",
            (self.netuid, block, sub["immunity_period"])).fetchone()
        if row is None:
            raise ChainError(f"sandbox netuid {self.netuid} is full ({sub['max_uids']} uids) and every "
                             f"neuron is inside its immunity period ({sub['immunity_period']} blocks)")
        return row[0], row[1], row[2]

    def stake(self, wallet, amount: float) -> float:
        """Add ``amount`` TAO of stake to the wallet's hotkey; returns its new stake."""
        hotkey, _ = _keys(wallet)
        amount = parse_tao(amount, "amount")
        with self._write() as (conn, sub, block):
            uid = self._require_uid(conn, hotkey)
            conn.execute("UPDATE neurons SET stake=stake+? WHERE netuid=? AND uid=?", (amount, self.netuid, uid))
            conn.execute("UPDATE subnets SET total_staked=total_staked+? WHERE netuid=?", (amount, self.netuid))
            return conn.execute("SELECT stake FROM neurons WHERE netuid=? AND uid=?",
                                (self.netuid, uid)).fetchone()[0]

    def serve(self, wallet, ip: str, port: int) -> None:
        hotkey, _ = _keys(wallet)
        endpoint = format_endpoint(ip, port)
        with self._write() as (conn, sub, block):
            uid = self._require_uid(conn, hotkey)
            conn.execute("UPDATE neurons SET endpoint=? WHERE netuid=? AND uid=?", (endpoint, self.netuid, uid))

    def set_weights(self, wallet, uids: Sequence[int], weights: Sequence[float], version_key: int = 0) -> None:
        hotkey, _ = _keys(wallet)
        with self._write() as (conn, sub, block):
            uid = self._require_uid(conn, hotkey)
            n = conn.execute("SELECT COUNT(*) FROM neurons WHERE netuid=?", (self.netuid,)).fetchone()[0]
            dests, w = check_weights(uids, weights, n, sub)
            stakes = [r[0] for r in conn.execute(
                "SELECT stake FROM neurons WHERE netuid=? ORDER BY uid", (self.netuid,))]
            if not yuma.top_k_permits(stakes, sub["max_validators"])[uid] and set(dests) - {uid}:
                raise ChainError(f"uid {uid} has no validator permit (top {sub['max_validators']} stake "
                                 f"holders only; it holds {stakes[uid]:g} TAO)")
            last = conn.execute("SELECT weights_set_at FROM neurons WHERE netuid=? AND uid=?",
                                (self.netuid, uid)).fetchone()[0]
            if last is not None and block - last < sub["weights_rate_limit"]:
                raise RateLimited(f"weights rate limit: uid {uid} set weights at block {last}; next allowed at "
                                  f"block {last + sub['weights_rate_limit']} (now {block})",
                                  next_block=last + sub["weights_rate_limit"])
            conn.execute("DELETE FROM weights WHERE netuid=? AND uid=?", (self.netuid, uid))
            conn.executemany("INSERT INTO weights VALUES (?, ?, ?, ?)",
                             [(self.netuid, uid, d, float(x)) for d, x in zip(dests, w) if x > 0])
            conn.execute("UPDATE neurons SET weights_set_at=?, last_update=?, version_key=? "
                         "WHERE netuid=? AND uid=?", (block, block, int(version_key), self.netuid, uid))

    # ---- extras for the CLI and tests -----------------------------------------------------

    def weights(self) -> dict[int, dict[int, float]]:
        """The stored (normalised) weights: {validator uid: {uid: weight}}."""
        out: dict[int, dict[int, float]] = {}
        with self._tx(write=False) as conn:
            for uid, dest, w in conn.execute("SELECT uid, dest, weight FROM weights WHERE netuid=? "
                                             "ORDER BY uid, dest", (self.netuid,)):
                out.setdefault(uid, {})[dest] = w
        return out

    def version_keys(self) -> dict[int, int]:
        """The ``version_key`` each uid last passed to ``set_weights``: {uid: version_key},
        only uids that have set weights."""
        with self._tx(write=False) as conn:
            return dict(conn.execute("SELECT uid, version_key FROM neurons WHERE netuid=? AND "
                                     "weights_set_at IS NOT NULL ORDER BY uid", (self.netuid,)).fetchall())

    def ledger(self) -> dict:
        """Stake book-keeping: staked + emitted - removed equals the stake held."""
        with self._tx(write=False) as conn:
            sub = self._subnet(conn)
            held = conn.execute("SELECT COALESCE(SUM(stake), 0) FROM neurons WHERE netuid=?",
                                (self.netuid,)).fetchone()[0]
        return {"staked": sub["total_staked"], "emitted": sub["total_emitted"],
                "removed": sub["total_removed"], "held": held, "epochs": sub["epochs"],
                "last_epoch": sub["last_epoch"]}


# ---- validation helpers -------------------------------------------------------------------

@contextmanager
def _transaction(conn: sqlite3.Connection, begin: str,
                 db_error: Callable[[sqlite3.DatabaseError], Exception]) -> Iterator[sqlite3.Connection]:
    """One transaction on ``conn``: committed when the body ends, rolled back on any
    error (SQLite's become ``db_error(e)``); the connection is closed either way."""
    try:
        conn.execute(begin)
        yield conn
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as e:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise db_error(e) from None
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()


def _check_meta(conn, file: str) -> tuple[float, float]:
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError:
        raise UsageError(f"{file} is not a sandbox state file (corrupted or foreign)") from None
    if meta.get("format") != FORMAT:
        raise UsageError(f"{file} is not a sandbox state file (corrupted or foreign)")
    if meta.get("version") != VERSION:
        raise UsageError(f"{file} has sandbox format version {meta.get('version')}; this sn1 reads {VERSION}")
    try:
        return float(meta["genesis"]), float(meta["block_time"])
    except (KeyError, ValueError):
        raise UsageError(f"{file} is not a sandbox state file (corrupted meta table)") from None


def _validate_params(hp: dict, netuid, block_time) -> None:
    def bad(msg):
        raise UsageError(msg)
    if not isinstance(netuid, int) or isinstance(netuid, bool) or not 0 <= netuid <= 65535:
        bad(f"netuid must be an integer in 0..65535, got {netuid!r}")
    if block_time is not None and not (isinstance(block_time, (int, float)) and math.isfinite(block_time)
                                       and block_time > 0):
        bad(f"block time must be a positive number of seconds, got {block_time!r}")
    for key in ("tempo", "max_uids", "max_validators"):
        if not isinstance(hp[key], int) or hp[key] < 1:
            bad(f"{key} must be a positive integer, got {hp[key]!r}")
    for key in ("min_allowed_weights", "weights_rate_limit", "immunity_period"):
        if not isinstance(hp[key], int) or hp[key] < 0:
            bad(f"{key} must be a non-negative integer, got {hp[key]!r}")
    if not 0 < hp["max_weight_limit"] <= 1:
        bad(f"max_weight_limit must be in (0, 1], got {hp['max_weight_limit']!r}")
    if not 0 < hp["kappa"] <= 1:
        bad(f"kappa must be in (0, 1], got {hp['kappa']!r}")
    if not 0 <= hp["bonds_moving_average"] < 1:
        bad(f"bonds_moving_average must be in [0, 1), got {hp['bonds_moving_average']!r}")
    if not hp["emission_per_block"] >= 0:
        bad(f"emission_per_block must be >= 0, got {hp['emission_per_block']!r}")


def format_endpoint(ip: str, port: int) -> str:
    try:
        addr = ipaddress.ip_address(str(ip))
    except ValueError:
        raise ChainError(f"endpoint ip must be an IPv4 or IPv6 address, got {ip!r}") from None
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ChainError(f"endpoint port must be an integer in 1..65535, got {port!r}")
    return f"[{addr}]:{port}" if addr.version == 6 else f"{addr}:{port}"


def check_weights(uids: Sequence[int], weights: Sequence[float], n: int, sub: dict) -> tuple[list[int], np.ndarray]:
    """Validate weights against the subnet's limits; returns (uids, weights normalised and conformed)."""
    uids, weights = list(uids), list(weights)
    if len(uids) != len(weights):
        raise ChainError(f"weights: {len(uids)} uids but {len(weights)} weights")
    if not uids:
        raise ChainError("weights: empty")
    for u in uids:
        if isinstance(u, bool) or not isinstance(u, (int, np.integer)):
            raise ChainError(f"weights: uid {u!r} is not an integer")
    unknown = [int(u) for u in uids if not 0 <= int(u) < n]
    if unknown:
        raise ChainError(f"weights name unknown uid(s) {unknown} (subnet has uids 0..{n - 1})")
    if len(set(int(u) for u in uids)) != len(uids):
        raise ChainError("weights: duplicate uids")
    try:
        w = np.array(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise ChainError("weights must be numbers") from None
    if not np.all(np.isfinite(w)):
        raise ChainError("weights must be finite (no NaN or infinity)")
    if np.any(w < 0):
        raise ChainError("weights must be non-negative")
    if w.sum() <= 0:
        raise ChainError("weights are all zero")
    nonzero = int((w > 0).sum())
    need = min(sub["min_allowed_weights"], n)
    if nonzero < need:
        raise ChainError(f"weights: {nonzero} non-zero weight(s), subnet requires at least {need} "
                         f"(min_allowed_weights)")
    try:
        w = yuma.normalize_max_weight(w, sub["max_weight_limit"])
    except ValueError as e:
        raise ChainError(f"weights: {e}") from None
    return [int(u) for u in uids], w
