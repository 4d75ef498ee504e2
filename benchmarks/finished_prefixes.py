"""Skipping the rollouts of prefixes that already hold EOS: time saved, and the rewards unchanged.

Usage:
    HF_HUB_OFFLINE=1 python benchmarks/finished_prefixes.py          # ~2 min on one CPU thread

A sequence whose first t tokens hold EOS is finished: under a reward that cuts at EOS (the discriminator, BLEU,
reward functions) every rollout of that prefix scores exactly as the sequence itself. `RolloutEngine(eos_token_id=...)`
(what `SeqGANTrainer` builds) skips those rollouts and their scoring. This script rewards the same B = 64
sequences, N = 16, T = 20, with EOS forced at a position drawn uniformly from 5..20 in each sequence (text-like
lengths; dialogue replies in `shakespeare_dialogue` end near T/2), with and without the skip:

* the paper's LSTM generator (V = 5000) and a small CNN discriminator (full forwards);
* a small GPT-2 generator and a GPT-2 classifier discriminator (prefix sharing).

Prints seconds (best of 2), generator positions, discriminator positions, and the largest reward difference;
writes docs/results/finished_prefixes.json.
"""

from __future__ import annotations

import json
import os
import platform
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

LENGTH, BATCH, ROLLOUT_NUM, EOS = 20, 64, 16, 3


def measure(kind: str) -> list[dict]:
    generator, discriminator, *_ = build_models(kind, LENGTH, "cpu", quick=True)
    pad = discriminator.config.pad_token_id
    adapter = DiscriminatorAdapter(num_labels=2, eos_token_id=EOS, pad_token_id=pad, discriminator_pad_token_id=pad)
    sequences = RolloutEngine(BOS, LENGTH, ROLLOUT_NUM).sample(generator, BATCH, torch.Generator().manual_seed(1))
    sequences[sequences == EOS] = EOS + 1  # EOS only where it is placed below
    ends = torch.randint(4, LENGTH, (BATCH,), generator=torch.Generator().manual_seed(2))
    sequences[torch.arange(BATCH), ends] = EOS
    rows, reference = [], None
    for label, eos in (("every prefix rolled out", None), ("finished prefixes skipped", EOS)):
        engine = RolloutEngine(BOS, LENGTH, ROLLOUT_NUM, eos_token_id=eos)
        reward = DiscriminatorReward(adapter, lambda: discriminator)
        engine(generator, sequences, reward, rng=torch.Generator().manual_seed(3))  # warm-up, sharing check
        seconds = []
        for _ in range(2):
            engine.counter.reset()
            start = time.perf_counter()
            rewards = engine(generator, sequences, reward, rng=torch.Generator().manual_seed(3))
            seconds.append(time.perf_counter() - start)
        reference = rewards if reference is None else reference
        rows.append({"models": kind, "rollouts": label, "s": min(seconds),
                     "generator_positions": engine.counter.generator_positions,
                     "discriminator_positions": engine.counter.discriminator_positions,
                     "scored_sequences": engine.counter.scored_sequences,
                     "max_reward_difference": float((rewards - reference).abs().max())})
    rows[1]["speedup"] = rows[0]["s"] / rows[1]["s"]
    return rows


def main() -> dict:
    torch.set_num_threads(1)
    rows = measure("lstm") + measure("gpt2")
    print(f"{'models':6} {'rollouts':27} {'seconds':>8} {'speed-up':>8} {'G positions':>12} {'D positions':>12} "
          f"{'max |dQ|':>9}")
    for row in rows:
        speedup = f"{row['speedup']:7.2f}x" if "speedup" in row else f"{'':8}"
        print(f"{row['models']:6} {row['rollouts']:27} {row['s']:8.2f} {speedup} {row['generator_positions']:12d} "
              f"{row['discriminator_positions']:12d} {row['max_reward_difference']:9.2g}")
    result = {"command": "python benchmarks/finished_prefixes.py",
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, 1 thread",
              "setting": {"batch": BATCH, "rollout_num": ROLLOUT_NUM, "T": LENGTH, "eos_position": "uniform 5..20"},
              "rows": rows}
    out = REPO / "docs" / "results" / "finished_prefixes.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
