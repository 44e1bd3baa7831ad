"""The OpenAI miner; same flags as `sn1 miner --backend openai`.

python neurons/miners/openai/miner.py --netuid 102 --subtensor.network test --wallet.name W --wallet.hotkey H --logging.debug --axon.port 8091

OPENAI_API_KEY comes from the environment or a .env file; --neuron.model_id picks the model
(default gpt-3.5-turbo-1106); --neuron.base_url points at any OpenAI-compatible server.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))

from sn1.miner.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(default_backend="openai"))
