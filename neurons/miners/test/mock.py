"""The mock test miner (sn1/miner/backends/test.py); same flags as `sn1 miner --backend mock`.

python neurons/miners/test/mock.py --netuid 102 --subtensor.network test --wallet.name W --wallet.hotkey H --axon.port 8091
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))

from sn1.miner.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(default_backend="mock"))
