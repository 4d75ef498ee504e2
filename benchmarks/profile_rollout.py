"""Where one reward computation spends its time: a `torch.profiler` table per case (the shares quoted in
docs/PERFORMANCE.md).

Usage:
    HF_HUB_OFFLINE=1 python benchmarks/profile_rollout.py            # GPT-2 T=80 rollouts, paper-CNN scoring
    HF_HUB_OFFLINE=1 python benchmarks/profile_rollout.py --rows 12

Cases (the models of `rollout_speed.py`, one torch thread): `gpt2-rollouts` profiles `RolloutEngine.rollouts`
for the small GPT-2 generator at T=80 (B=16, N=16: a quarter of the benchmark's batch); `lstm-rollouts` the
paper's LSTM at the paper's sizes (B=64, N=16, T=20); `cnn-scoring` the paper CNN scoring 4,096 rollout-length
sequences in the engine's CPU chunks.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from torch.profiler import profile  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rollout_speed import BOS, build_models  # noqa: E402

from seqgan_hf.rollout import RolloutEngine  # noqa: E402


def profile_table(fn, rows: int) -> str:
    fn()  # warm-up
    with profile() as prof:
        fn()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10, help="ops per table")
    args = parser.parse_args()
    torch.set_num_threads(1)

    generator, *_ = build_models("gpt2", 80, "cpu", quick=False)
    engine = RolloutEngine(BOS, 80, 16)
    sequences = engine.sample(generator, 16, rng=torch.Generator().manual_seed(1))
    print("== gpt2-rollouts (T=80, B=16, N=16) ==")
    print(profile_table(lambda: engine.rollouts(generator, sequences, torch.Generator().manual_seed(2)), args.rows))

    lstm, _, score, _ = build_models("lstm", 20, "cpu", quick=False)
    lstm_engine = RolloutEngine(BOS, 20, 16)
    lstm_sequences = lstm_engine.sample(lstm, 64, rng=torch.Generator().manual_seed(1))
    print("== lstm-rollouts (paper LSTM, T=20, B=64, N=16) ==")
    print(profile_table(lambda: lstm_engine.rollouts(lstm, lstm_sequences, torch.Generator().manual_seed(2)),
                        args.rows))

    batch = torch.randint(1, 5000, (4096, 20), generator=torch.Generator().manual_seed(3))
    cnn_engine = RolloutEngine(BOS, 20, 16)
    with torch.no_grad():
        print("== cnn-scoring (paper CNN, 4,096 sequences of length 20) ==")
        print(profile_table(lambda: [score(chunk) for chunk in batch.split(cnn_engine.score_rows(20, batch.device))],
                            args.rows))


if __name__ == "__main__":
    main()
