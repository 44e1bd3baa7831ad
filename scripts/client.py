"""Query miners and print their streams (the seed's client script; same as `sn1 client`).

python scripts/client.py --uids 1 2 --wallet_name W --hotkey H --message "..." [--netuid 102 --network test]
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from sn1.client import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
