import pytest


class FakeClock:
    """Wall clock the tests move by hand: block = (now - genesis) / block_time."""

    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def blocks(self, n: float, block_time: float = 1.0) -> None:
        self.t += n * block_time


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def wallets(make_wallet):
    """wallets(n) -> n wallets named w0..w{n-1} (one coldkey each)."""
    return lambda n: [make_wallet(f"w{i}") for i in range(n)]
