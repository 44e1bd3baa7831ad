"""The validator's flags (seed names kept: --neuron.*, --wandb.*)."""

from __future__ import annotations

import argparse

from ..config import (LISTEN_PORT, PORT, SEED, Bounded, add_chain_args, add_logging_args, add_wallet_args,
                      at_least, flag, fraction, positive)

DEFAULT_TASKS = ["summarization", "qa", "debugging", "math", "date_qa", "inference"]
# inference takes 0.3; the reference tasks share the rest as before (0.25 each -> 0.175).
DEFAULT_TASK_P = [0.175, 0.175, 0.0, 0.175, 0.175, 0.3]

DEFAULT_AXON_PORT = 8092   # the validator's own endpoint (/health)


def add_args(parser: argparse.ArgumentParser) -> None:
    add_wallet_args(parser)
    add_chain_args(parser)
    add_logging_args(parser)
    from .. import llm

    llm.add_args(parser)
    from .. import datasets

    datasets.add_args(parser)    # --neuron.live_data, --data.*
    n = "--neuron."
    flag(parser, n + "device", default="cpu", help="device for the validator's models (cpu, cuda)")
    flag(parser, n + "full_path", default=None,
         help="folder for state and events (default ~/.sn1/validators/WALLET/HOTKEY/netuidN)")
    flag(parser, n + "timeout", type=positive(), default=10.0, help="seconds to wait for miners' streams")
    flag(parser, n + "sample_size", type=at_least(1), default=50, help="miners queried per step")
    flag(parser, n + "tasks", nargs="+", default=DEFAULT_TASKS, help="task names")
    flag(parser, n + "task_p", nargs="+", type=fraction(), default=DEFAULT_TASK_P,
         help="task probabilities, same order as --neuron.tasks, summing to 1 (summarization, "
              "qa, math, date_qa .175 each, debugging 0, inference .3)")
    flag(parser, n + "inference_model", default=None,
         help="inference task: the .gguf model miners must run and the validator verifies with "
              "(default: the embedded SmolLM2-135M-Instruct, CPU)")
    flag(parser, n + "inference_max_tokens", type=at_least(1), default=64,
         help="inference task: max_tokens asked of miners (answers are verified token by token)")
    flag(parser, n + "inference_top_logprobs", type=Bounded(int, 0, 20), default=5,
         help="inference task: alternatives per token miners report")
    flag(parser, n + "inference_threads", type=at_least(1), default=None,
         help="inference task: CPU threads of the verification model (default: llama.cpp's)")
    flag(parser, n + "verify_engine", choices=("auto", "llama.cpp", "transformers"), default="auto",
         help="inference task: what computes the rows answers are checked against: the same GGUF "
              "de-quantised in transformers (about twice as fast on CPU) or llama.cpp; auto: "
              "transformers where it is installed")
    flag(parser, n + "proof_window", type=at_least(0), default=3,
         help="no proof, no pay: a miner's weight is 0 unless one of its last N inference answers "
              "passed verification (0 turns the rule off; it is off when inference is never asked)")
    flag(parser, n + "proof_max_age", type=at_least(1), default=1000,
         help="... and that answer was at most this many of the validator's steps ago")
    flag(parser, n + "moving_average_alpha", type=fraction(), default=0.1,
         help="weight of a new reward in the moving average of scores")
    flag(parser, n + "decay_alpha", type=fraction(), default=0.001,
         help="every score decays by this much per step (floored at 0)")
    flag(parser, n + "epoch_length", type=at_least(0), default=100, help="blocks between weight updates")
    flag(parser, n + "vpermit_tao_limit", type=at_least(0, float), default=4096,
         help="validators with more stake than this are never queried")
    flag(parser, n + "query_unique_coldkeys", action="store_true", help="one uid per coldkey per step")
    flag(parser, n + "query_unique_ips", action="store_true", help="one uid per IP per step")
    flag(parser, n + "num_concurrent_forwards", type=at_least(1), default=1,
         help="steps run concurrently")
    flag(parser, n + "disable_set_weights", action="store_true", help="never set weights on chain")
    flag(parser, n + "axon_off", action="store_true", help="do not serve the validator's own endpoint")
    flag(parser, n + "events_retention_size", type=at_least(1), default=2 * 1024**3,
         help="cap in bytes of the local events log")
    flag(parser, n + "relevance_model", default=None, help="sentence-transformers model for relevance")
    # An answer scores only up to rewards.pipeline.MAX_COMPLETION_CHARS (16 Ki characters, bounded
    # scoring work); 2048 tokens stay well under it, so an honest answer is never cut off by size.
    flag(parser, n + "query_max_tokens", type=Bounded(int, 1, 2048, note="answers score up to 16 Ki characters"),
         default=256, help="max_tokens asked of miners")
    flag(parser, n + "max_steps", type=at_least(0), default=0,
         help="steps to run in this process, then stop (0 = run forever); the step counter itself "
              "continues across restarts")
    flag(parser, n + "seed", type=SEED, default=None, help="seed for task and uid choices")
    flag(parser, n + "weights_retry_base", type=at_least(0, float), default=2.0,
         help="seconds before retrying a failed set_weights (doubles per failure, max 300)")
    flag(parser, n + "sync_interval", type=at_least(0, float), default=0.0,
         help="min seconds between metagraph resyncs (0 = after every step)")
    flag(parser, "--axon.port", type=LISTEN_PORT, default=DEFAULT_AXON_PORT, help="port of the validator's own endpoint")
    flag(parser, "--axon.ip", default="0.0.0.0", help="address to listen on")
    flag(parser, "--axon.external_ip", default=None, help="ip published on chain")
    flag(parser, "--axon.external_port", type=PORT, default=None, help="port published on chain")
    from . import metrics

    metrics.add_args(parser)     # --metrics.port, --metrics.host, --metrics.top_uids
    flag(parser, "--wandb.off", action="store_true", help="no Weights & Biases logging")
    flag(parser, "--wandb.offline", action="store_true", help="log to wandb files only")
    flag(parser, "--wandb.project_name", default="alpha-validators", help="W&B project")
    flag(parser, "--wandb.entity", default="opentensor-dev", help="W&B entity")
    flag(parser, "--wandb.run_step_length", type=at_least(1), default=1500, help="steps per wandb run")
