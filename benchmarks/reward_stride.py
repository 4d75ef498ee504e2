"""`reward_stride`: how much rollout time it saves on long completions, and how much it changes the rewards.

Usage:
    HF_HUB_OFFLINE=1 python benchmarks/reward_stride.py            # ~3 min on one CPU thread
    HF_HUB_OFFLINE=1 python benchmarks/reward_stride.py --quick    # seconds

Setting: prompt-conditioned rewards for completions of T tokens (T = 32 and 64) after prompts of 4-12 tokens,
B = 16 completions, N = 8 rollouts, a 2-layer GPT-2 generator (32-wide, V = 2000) and a 1-layer GPT-2 classifier
as the discriminator (prefix sharing on), both randomly initialised with a wide init (std 0.5) so that P(real)
varies across completions. The same sampled completions are rewarded with stride 1 (every token, the paper) and
strides 2, 4, 8, 16, with the same random stream: the rolled-out prefixes get identical rewards, so every
difference comes from the tokens in between taking the next rolled-out prefix's reward.

Per (T, stride): seconds (best of `--repeats`), generator positions fed, the speed-up over stride 1, and the
reward change on the tokens in between: mean and max |Q_k - Q_1| and the correlation of Q_k with Q_1 over all
tokens. For scale, "MC noise" is the same numbers for stride 1 with another random stream (the change that
Monte Carlo sampling alone makes). Prints a table; writes docs/results/reward_stride.json.
"""

from __future__ import annotations

import argparse
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

from seqgan_hf.discriminator import DiscriminatorAdapter  # noqa: E402
from seqgan_hf.prompts import Prompts  # noqa: E402
from seqgan_hf.rewards import DiscriminatorReward  # noqa: E402
from seqgan_hf.rollout import RolloutEngine  # noqa: E402

VOCAB, BOS, PAD = 2000, 0, 1
STRIDES = (1, 2, 4, 8, 16)


def build_models(init_std: float = 0.5):
    from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

    torch.manual_seed(0)
    common = dict(vocab_size=VOCAB, n_embd=32, n_head=2, n_positions=128, bos_token_id=BOS, eos_token_id=None,
                  initializer_range=init_std)
    generator = GPT2LMHeadModel(GPT2Config(n_layer=2, **common)).eval()
    discriminator = GPT2ForSequenceClassification(GPT2Config(n_layer=1, num_labels=2, pad_token_id=PAD,
                                                             **common)).eval()
    return generator, discriminator


def prompts_for(batch: int) -> Prompts:
    rng = torch.Generator().manual_seed(1)
    lengths = torch.randint(4, 13, (batch,), generator=rng).tolist()
    rows = [torch.randint(2, VOCAB, (length,), generator=rng).tolist() for length in lengths]
    return Prompts.from_token_lists(rows, BOS, PAD)


def change(rewards: torch.Tensor, reference: torch.Tensor) -> dict:
    difference = (rewards - reference).abs()
    stacked = torch.stack([rewards.flatten(), reference.flatten()]).double()
    return {"mean_abs_change": float(difference.mean()), "max_abs_change": float(difference.max()),
            "correlation": float(torch.corrcoef(stacked)[0, 1])}


def measure(length: int, batch: int, rollout_num: int, repeats: int) -> list[dict]:
    generator, discriminator = build_models()
    adapter = DiscriminatorAdapter(2, eos_token_id=None, pad_token_id=PAD, discriminator_pad_token_id=PAD,
                                   prompt_width=12)
    reward = DiscriminatorReward(adapter, lambda: discriminator)
    prompts = prompts_for(batch)
    sequences = RolloutEngine(BOS, length, rollout_num).sample(generator, batch, torch.Generator().manual_seed(2),
                                                               prompts=prompts)
    # Warm-up (allocations, and the discriminator's one-time prefix-sharing check) before anything is timed.
    RolloutEngine(BOS, length, rollout_num)(generator, sequences, reward, rng=torch.Generator().manual_seed(3),
                                            prompts=prompts)
    rows, reference = [], None
    for stride in [stride for stride in STRIDES if stride < length]:
        engine = RolloutEngine(BOS, length, rollout_num, reward_stride=stride)
        seconds = []
        for _ in range(repeats):
            engine.counter.reset()
            start = time.perf_counter()
            rewards = engine(generator, sequences, reward, rng=torch.Generator().manual_seed(3), prompts=prompts)
            seconds.append(time.perf_counter() - start)
        row = {"T": length, "stride": stride, "s": min(seconds),
               "generator_positions": engine.counter.generator_positions,
               "discriminator_positions": engine.counter.discriminator_positions,
               "rolled_out_prefixes": len(engine.prefix_lengths(length))}
        if reference is None:
            reference = rewards
            noise = engine(generator, sequences, reward, rng=torch.Generator().manual_seed(4), prompts=prompts)
            rows.append({"T": length, "stride": "MC noise (stride 1, another stream)", **change(noise, reference)})
        row.update(change(rewards, reference))
        rows.append(row)
    base = next(r for r in rows if r["stride"] == 1)
    for row in rows:
        if "s" in row:
            row["speedup"] = base["s"] / row["s"]
            row["generator_work_ratio"] = base["generator_positions"] / row["generator_positions"]
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="T = 16 only, one repeat (a smoke run)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=str(REPO / "docs" / "results" / "reward_stride.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lengths, repeats = ((16,), 1) if args.quick else ((32, 64), args.repeats)
    rows = []
    for length in lengths:
        rows += measure(length, batch=16, rollout_num=8, repeats=repeats)
    print(f"{'T':>3} {'stride':>36} {'seconds':>8} {'speed-up':>8} {'G work':>7} {'mean|dQ|':>9} {'max|dQ|':>8} "
          f"{'corr':>6}")
    for row in rows:
        timing = (f"{row['s']:8.2f} {row['speedup']:7.2f}x {row['generator_work_ratio']:6.2f}x" if "s" in row
                  else f"{'':8} {'':8} {'':7}")
        print(f"{row['T']:>3} {str(row['stride']):>36} {timing} {row['mean_abs_change']:9.4f} "
              f"{row['max_abs_change']:8.4f} {row['correlation']:6.3f}")
    result = {"command": "python benchmarks/reward_stride.py" + (" --quick" if args.quick else ""),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                         f"{args.threads} thread(s)",
              "setting": {"batch": 16, "rollout_num": 8, "vocab": VOCAB, "prompt_lengths": "4-12"},
              "rows": rows}
    if not args.quick:
        os.makedirs(os.path.dirname(args.output), exist_ok=True)
        with open(args.output, "w") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    main()
