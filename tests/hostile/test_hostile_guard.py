"""The connection guard's per-address cap, and the larger cap of an address a validator's
verified request came from (a gateway streams many answers to one miner at once)."""

from sn1.protocol.connections import ConnectionGuard, ConnectionLimits


class Conn:
    dropped = False

    def drop(self):
        self.dropped = True


def _open_busy(guard, ip, n):
    opened = []
    for _ in range(n):
        c = Conn()
        if guard.opened(c, ip):
            guard.set_busy(c)          # carrying a request: never evicted
            opened.append(c)
    return opened


def test_an_address_holding_only_busy_connections_is_refused_at_its_cap():
    g = ConnectionGuard(ConnectionLimits(max_per_ip=2, max_per_validator_ip=5))
    assert len(_open_busy(g, "10.0.0.1", 4)) == 2 and g.refused == 2
    assert len(_open_busy(g, "10.0.0.2", 1)) == 1          # other addresses are not affected


def test_a_trusted_address_may_hold_max_per_validator_ip():
    g = ConnectionGuard(ConnectionLimits(max_per_ip=2, max_per_validator_ip=5))
    g.trust("10.0.0.9")
    assert len(_open_busy(g, "10.0.0.9", 8)) == 5 and g.refused == 3
    assert len(_open_busy(g, "10.0.0.1", 4)) == 2            # strangers keep the small cap


def test_trust_expires(monkeypatch):
    from sn1.protocol import connections

    g = ConnectionGuard(ConnectionLimits(max_per_ip=2, max_per_validator_ip=5))
    g.trust("10.0.0.9")
    assert g.cap("10.0.0.9") == 5
    now = connections.time.monotonic()
    monkeypatch.setattr(connections.time, "monotonic", lambda: now + connections.TRUST_TTL + 1)
    assert g.cap("10.0.0.9") == 2


def test_trusted_addresses_are_bounded():
    from sn1.protocol.connections import MAX_TRUSTED

    g = ConnectionGuard(ConnectionLimits())
    for i in range(MAX_TRUSTED + 10):
        g.trust(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(g.trusted) == MAX_TRUSTED
