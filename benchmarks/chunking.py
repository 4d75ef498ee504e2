"""Two CPU chunking choices of the engine, measured: the rollout-chunk cap and discriminator prefix sharing.

Usage:
    HF_HUB_OFFLINE=1 python benchmarks/chunking.py          # ~2 min on one CPU thread

* rollout chunks: the paper's LSTM (V=5000, B=64, N=16, T=20), `RolloutEngine.rollouts` with chunks capped at
  ~4M logits (the default) and uncapped (4096 rows): seconds and minor page faults (`getrusage`) per call, and
  whether the rollouts are identical;
* discriminator prefix sharing: the benchmark's small GPT-2 generator and classifier (rollout_speed.py's models, but a
  pad token the generator never samples), scoring rollouts with full discriminator forwards vs prefix sharing (`DiscriminatorReward`),
  over completions per prefix (B*N) and T: milliseconds (best of 3) and the ratio.
Prints two tables; writes docs/results/chunking.json.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rollout_speed import BOS, build_models  # noqa: E402

from seqgan_hf.discriminator import DiscriminatorAdapter  # noqa: E402
from seqgan_hf.rewards import DiscriminatorReward  # noqa: E402
from seqgan_hf.rollout import RolloutEngine  # noqa: E402


def rollout_chunks() -> list[dict]:
    generator, *_ = build_models("lstm", 20, "cpu", quick=False)
    sequences = RolloutEngine(BOS, 20, 16).sample(generator, 64, rng=torch.Generator().manual_seed(1))
    rows, reference = [], None
    for repeat in range(2):
        for label, cap in (("uncapped (4096 rows)", 0), ("capped (default)", None)):
            engine = RolloutEngine(BOS, 20, 16, rollout_block_logits=cap)
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            rollouts = engine.rollouts(generator, sequences, torch.Generator().manual_seed(2))
            seconds = time.perf_counter() - start
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            reference = rollouts if reference is None else reference
            if repeat:  # the first round warms up
                rows.append({"chunks": label, "rows": engine.rollout_rows(5000, sequences.device), "s": seconds,
                             "minor_faults": faults, "identical": bool(torch.equal(rollouts, reference))})
    return rows


def prefix_sharing() -> list[dict]:
    from transformers import GPT2Config, GPT2ForSequenceClassification

    generator, *_ = build_models("gpt2", 40, "cpu", quick=False)
    vocab = generator.config.vocab_size
    torch.manual_seed(1)
    discriminator = GPT2ForSequenceClassification(GPT2Config(vocab_size=vocab + 1, n_embd=32, n_layer=1, n_head=2,
                                                      n_positions=128, pad_token_id=vocab, num_labels=2)).eval()
    adapter = DiscriminatorAdapter(num_labels=2, eos_token_id=None, pad_token_id=None, discriminator_pad_token_id=vocab)

    score = DiscriminatorReward(adapter, lambda: discriminator, prefix_sharing=False)

    def best(fn, *args) -> float:
        fn(*args)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn(*args)
            times.append(time.perf_counter() - start)
        return min(times)

    rows = []
    for length in (8, 20, 40):
        for batch, rollout_num in ((8, 2), (16, 4), (32, 4), (64, 4), (64, 16)):
            engine = RolloutEngine(BOS, length, rollout_num)
            sequences = engine.sample(generator, batch, rng=torch.Generator().manual_seed(1))
            rollouts = engine.rollouts(generator, sequences, torch.Generator().manual_seed(2))
            reward = DiscriminatorReward(adapter, lambda: discriminator)
            full = best(engine.rewards, rollouts, sequences, score)
            shared = best(engine.rewards, rollouts, sequences, reward)
            rows.append({"T": length, "completions_per_prefix": batch * rollout_num, "full_ms": 1e3 * full,
                         "shared_ms": 1e3 * shared, "speedup": full / shared,
                         "shared": reward.prefix_sharing.enabled})
    return rows


def main() -> None:
    torch.set_num_threads(1)
    result = {"command": "HF_HUB_OFFLINE=1 python benchmarks/chunking.py", "torch_threads": 1,
              "rollout_chunks": rollout_chunks(), "prefix_sharing": prefix_sharing()}
    print("| LSTM rollout chunks | rows | s | minor page faults | identical |\n|---|---|---|---|---|")
    for row in result["rollout_chunks"]:
        print(f"| {row['chunks']} | {row['rows']} | {row['s']:.2f} | {row['minor_faults']:,} | {row['identical']} |")
    print("\n| T | completions per prefix | full forwards ms | prefix cache ms | speed-up |\n|---|---|---|---|---|")
    for row in result["prefix_sharing"]:
        print(f"| {row['T']} | {row['completions_per_prefix']} | {row['full_ms']:.1f} | {row['shared_ms']:.1f} | "
              f"{row['speedup']:.2f}x |")
    output = REPO / "docs" / "results" / "chunking.json"
    output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
