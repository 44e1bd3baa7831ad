"""SN1 validator (seed command): python neurons/validator.py --netuid 1 --subtensor.network finney ..."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from sn1.validator.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
