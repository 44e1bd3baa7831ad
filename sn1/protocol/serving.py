"""What both roles need to serve HTTP: bind the listening socket, find the address to publish.

The miner serves its chat endpoint, the validator a small /health page; both
bind before anything slow happens (a taken port is a one-line error at start)
and publish ``ip:port`` on chain. Lives in the protocol layer so neither role
imports the other.
"""

from __future__ import annotations

import errno
import logging
import resource
import socket

from ..config import get
from ..errors import UsageError

log = logging.getLogger("sn1.serving")


def bind_socket(ip: str, port: int, flag: str = "--axon.port", default: int | None = None) -> socket.socket:
    """A bound TCP socket for uvicorn (UsageError if the address is taken, naming ``flag``,
    the flag that chose the port, and saying when its ``default`` was the port taken).

    TCP_NODELAY matters: asyncio only sets it on accepted sockets whose proto
    is IPPROTO_TCP, and without it every request on a kept-alive connection
    waits ~40 ms for a delayed ACK (Nagle). Linux passes the option from the
    listening socket to the accepted ones.
    """
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((ip, port))
    except OSError as e:
        sock.close()
        reason = e.strerror or str(e)
        if port == default:
            hint = f"{port} is the default of {flag}: choose another port with {flag} PORT"
        else:
            hint = f"choose another port with {flag} PORT"
        if port and e.errno == errno.EADDRINUSE:
            hint += " (0: any free port)"
            raise UsageError(f"cannot listen on {ip}:{port} ({flag}): {reason}; {hint}") from None
        raise UsageError(f"cannot listen on {ip}:{port} ({flag}): {reason}") from None
    sock.set_inheritable(True)
    return sock


def published_ip(config) -> str:
    """The ip to publish on chain: --axon.external_ip, else the listening ip, else a guess."""
    ext = get(config, "axon.external_ip")
    if ext:
        return ext
    ip = get(config, "axon.ip", "0.0.0.0")
    if ip not in ("0.0.0.0", "::", ""):
        return ip
    if get(config, "subtensor.network") in ("sandbox", "local"):
        return "127.0.0.1"
    # The address of the interface that routes outwards (no packet is sent).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("8.8.8.8", 80))
            ip = s.getsockname()[0]
        except OSError:
            raise UsageError("cannot find this machine's address: set --axon.external_ip") from None
    log.warning("publishing %s (a local interface address); set --axon.external_ip to your public ip", ip)
    return ip


def raise_fd_limit(wanted: int) -> int:
    """Raise the soft limit of open files towards ``wanted`` (at most the hard limit).

    A server holding many connections otherwise hits a soft limit of 1024 and
    stops accepting (asyncio retries accept() only a second later).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, target, e)
    return soft
