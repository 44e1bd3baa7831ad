"""The test helpers' free_port: ports outgoing connections cannot take before a server binds."""

import socket

from sn1.testing import _ephemeral_low, free_port


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range():
    low = _ephemeral_low()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50           # never handed out twice, even before anyone binds
    if low > 21000:
        assert all(20000 <= p < low for p in ports)
    for p in ports[:5]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))


def test_a_port_in_use_is_not_handed_out():
    low = _ephemeral_low()
    held = []
    try:
        # Hold many ports of the range; free_port must skip every one of them.
        for p in range(20000, min(low, 20400)):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
                s.listen()
                held.append(s)
            except OSError:
                s.close()
        taken = {s.getsockname()[1] for s in held}
        for _ in range(200):
            assert free_port() not in taken
    finally:
        for s in held:
            s.close()
