"""The Hugging Face miner (transformers); same flags as `sn1 miner --backend hf`.

python neurons/miners/huggingface/miner.py --netuid 102 --subtensor.network test --wallet.name W --wallet.hotkey H --logging.debug --axon.port 8091

Without --neuron.model_id it runs the embedded SmolLM2-135M-Instruct on the CPU. On a GPU:
--neuron.model_id HuggingFaceH4/zephyr-7b-beta --neuron.device cuda [--neuron.load_in_8bit | --neuron.load_in_4bit]
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))

from sn1.miner.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(default_backend="hf"))
