"""SN1 gateway: python neurons/gateway.py --netuid 1 --subtensor.network finney --wallet.name W --wallet.hotkey H"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from sn1.gateway.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
