"""Rollout speed: the engine vs a naive port of the public SeqGAN code vs the arithmetic limit.

Usage:
    HF_HUB_OFFLINE=1 python benchmarks/rollout_speed.py            # full run (~10 min on 2 CPU cores)
    HF_HUB_OFFLINE=1 python benchmarks/rollout_speed.py --quick    # smoke run (small sizes, ~1 min)

For each case (the paper's LSTM + CNN at T=20; a small GPT-2 generator + small GPT-2 classifier at
T=20/40/80; B=64, N=16) it measures, alternating the three in every repeat and reporting medians:

* naive_s: what the public code does: for each rollout, for each prefix, re-run the prefix from the first
  token, sample the rest with the model's own state/cache (batch B, `torch.multinomial`), score that batch of
  completions; and score the complete sequences once per rollout. The loop over rollouts is the outer loop
  and every iteration does the same work, so one iteration is timed and multiplied by N (`naive_rollouts`);
* naive_recompute_s (GPT-2 cases): the same loop without any cache, every sampled token re-encoding its whole
  context (what ports written for RNNs do with a transformer: O(T^3) positions per sequence and rollout);
* engine_s: `RolloutEngine.__call__` (rollouts + scoring), split into engine_rollout_s and engine_score_s,
  scoring as `SeqGANTrainer` does by default: the GPT-2 classifier (a causal discriminator) shares each prefix's cache
  (`discriminator_prefix_cache`), the CNN gets full forwards; engine_score_full_discriminator_s: the same engine
  feeding every completion to the GPT-2 discriminator in full (what the limit's discriminator forward does);
* limit_s: the work no implementation can skip, done the most efficient way PyTorch offers: one
  teacher-forced generator forward over all B*N*(T-1) rollout sequences plus one discriminator forward over
  them, each at the best batch size: a sweep on 4096 rows (generator 16 to 4096 rows, discriminator 32 to
  4096), its two fastest candidates then timed on the full pass.

Then: scaling exponents in T and N (least squares of log time), Trainer overhead (MLE and discriminator
training throughput of `SeqGANTrainer` vs a plain PyTorch loop, same model, data and batch size), peak memory
(peak RSS of a fresh process running one reward computation; `torch.cuda.max_memory_allocated` on GPU), and
where the time of one adversarial iteration of the paper's protocol goes. Writes docs/results/speed.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from seqgan_hf.discriminator import DiscriminatorAdapter  # noqa: E402
from seqgan_hf.models.cnn import CNNDiscriminatorConfig, CNNForSequenceClassification  # noqa: E402
from seqgan_hf.models.lstm import LSTMConfig, LSTMForCausalLM  # noqa: E402
from seqgan_hf.rewards import DiscriminatorReward  # noqa: E402
from seqgan_hf.rollout import RolloutEngine  # noqa: E402

BOS = 0
GPT2_VOCAB = 1000


# ---- models ------------------------------------------------------------------------------------------


def build_models(kind: str, length: int, device: str, quick: bool):
    """Generator, discriminator, its P(real) with full forwards (`score`) and the trainer's reward source.

    The reward source shares prefixes for the GPT-2 classifier (a causal discriminator with a cache); for the CNN
    it finds on first use that sharing does not apply and scores full sequences, as the trainer does.
    """
    torch.manual_seed(0)
    if kind == "lstm":
        generator = LSTMForCausalLM(LSTMConfig(sequence_length=length))  # the paper's: V=5000, E=H=32
        config = CNNDiscriminatorConfig(vocab_size=5000)  # the paper's CNN: 12 widths, 1720 filters, highway
        if quick:
            config = CNNDiscriminatorConfig(vocab_size=5000, filter_sizes=[2, 3, 5], num_filters=[32, 32, 32])
        discriminator = CNNForSequenceClassification(config)
        pad = config.pad_token_id
    else:
        from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

        generator = GPT2LMHeadModel(
            GPT2Config(vocab_size=GPT2_VOCAB, n_embd=32, n_layer=2, n_head=2, n_positions=128, bos_token_id=BOS,
                       eos_token_id=BOS)
        )
        d_config = GPT2Config(
            vocab_size=GPT2_VOCAB, n_embd=32, n_layer=1, n_head=2, n_positions=128, pad_token_id=GPT2_VOCAB - 1,
            num_labels=2, bos_token_id=BOS, eos_token_id=BOS,
        )
        discriminator = GPT2ForSequenceClassification(d_config)
        pad = d_config.pad_token_id
    generator.to(device).eval()
    discriminator.to(device).eval()
    adapter = DiscriminatorAdapter(num_labels=2, eos_token_id=None, pad_token_id=None, discriminator_pad_token_id=pad)

    score = DiscriminatorReward(adapter, lambda: discriminator, prefix_sharing=False)
    return generator, discriminator, score, DiscriminatorReward(adapter, lambda: discriminator)


# ---- the three contenders ----------------------------------------------------------------------------


@torch.no_grad()
def naive_rewards(generator, score, sequences: torch.LongTensor, rollout_num: int, rollouts_to_run: int):
    """The public code's loop (ported to PyTorch), over the first `rollouts_to_run` of `rollout_num` rollouts."""
    batch, length = sequences.shape
    bos = sequences.new_full((batch, 1), BOS)
    rewards = torch.zeros(rollouts_to_run, length, device=sequences.device).new_zeros(rollouts_to_run, batch, length)
    for i in range(rollouts_to_run):
        for given in range(1, length):
            # Re-run the prefix from the first token, then sample the rest with the model's state / cache.
            out = generator(input_ids=torch.cat([bos, sequences[:, :given]], dim=1), use_cache=True)
            cache, logits, rows = out.cache, out.logits[:, -1], sequences[:, :given]
            for position in range(given, length):
                token = torch.multinomial(torch.softmax(logits.float(), dim=-1), 1)
                rows = torch.cat([rows, token], dim=1)
                if position + 1 < length:
                    out = generator(input_ids=token, cache=cache, use_cache=True)
                    cache, logits = out.cache, out.logits[:, -1]
            rewards[i, :, given - 1] = score(rows)  # every completion scored, per rollout and prefix
        rewards[i, :, length - 1] = score(sequences)  # and the complete sequences once per rollout
    return rewards.sum(0) / rollout_num


@torch.no_grad()
def naive_recompute_rewards(generator, score, sequences: torch.LongTensor, rollout_num: int, rollouts_to_run: int):
    """`naive_rewards` without any cache: every sampled token re-encodes its whole context from the start token.

    This is what a port does when it samples with plain `model(input_ids)` calls (no `past_key_values` / `cache`),
    as most SeqGAN ports written for RNNs do when given a transformer: O(T^3) positions per sequence and rollout.
    """
    batch, length = sequences.shape
    bos = sequences.new_full((batch, 1), BOS)
    rewards = sequences.new_zeros(rollouts_to_run, batch, length, dtype=torch.float32)
    for i in range(rollouts_to_run):
        for given in range(1, length):
            rows = sequences[:, :given]
            for _ in range(given, length):
                logits = generator(input_ids=torch.cat([bos, rows], dim=1), use_cache=False).logits[:, -1]
                token = torch.multinomial(torch.softmax(logits.float(), dim=-1), 1)
                rows = torch.cat([rows, token], dim=1)
            rewards[i, :, given - 1] = score(rows)
        rewards[i, :, length - 1] = score(sequences)
    return rewards.sum(0) / rollout_num


@torch.no_grad()
def generator_pass(generator, sequences: torch.LongTensor, g_batch: int) -> None:
    """Teacher-forced generator forward (full logits) over `sequences` [R, T], `g_batch` rows at a time."""
    for chunk in sequences.split(g_batch):
        generator(input_ids=torch.cat([chunk.new_full((chunk.shape[0], 1), BOS), chunk[:, :-1]], dim=1), use_cache=False)


@torch.no_grad()
def discriminator_pass(score, sequences: torch.LongTensor, d_batch: int) -> None:
    for chunk in sequences.split(d_batch):
        score(chunk)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    """Wall seconds of `fn()`."""
    return clock(fn, device)[0]


def clock(fn, device: str, *args):
    """(wall seconds, result) of `fn(*args)`, synchronising the GPU around it."""
    _sync(device)
    start = time.perf_counter()
    value = fn(*args)
    _sync(device)
    return time.perf_counter() - start, value


def best_batch(candidates, run_sample, run_full, device: str) -> int:
    """The fastest batch size: a sweep on a subsample, then its two best candidates timed on the full pass.

    The subsample alone misled (a batch that was fastest on 4096 rows took 1.5x longer on all of them), so the
    final choice is made on the work that is measured.
    """
    sweep = {size: timed(lambda s=size: run_sample(s), device) for size in candidates}
    finalists = sorted(sweep, key=sweep.get)[:2]
    full = {size: timed(lambda s=size: run_full(s), device) for size in finalists}
    return min(full, key=full.get)


def run_case(kind: str, length: int, batch: int, rollout_num: int, repeats: int, device: str, quick: bool,
             naive_rollouts: int = 1, with_naive: bool = True, with_limit: bool = True,
             with_recompute: bool = False) -> dict:
    generator, _, score, reward = build_models(kind, length, device, quick)
    engine = RolloutEngine(BOS, length, rollout_num)
    sequences = engine.sample(generator, batch, rng=torch.Generator().manual_seed(1))
    rollouts = engine.rollouts(generator, sequences, torch.Generator().manual_seed(2))  # warm-up
    engine.rewards(rollouts, sequences, reward)  # warm-up; decides whether the discriminator shares prefixes
    vocab = generator.get_output_embeddings().weight.shape[0]
    g_batch = d_batch = 0
    if with_limit:
        every = rollouts.reshape(-1, length)
        sub = every[:4096]
        max_rows = max(64, (1 << 27) // (length * vocab))  # keep one chunk's logits under 512 MB
        g_batch = best_batch(
            [size for size in (16, 32, 64, 256, 1024, 4096) if size <= max_rows] or [16],
            lambda size: generator_pass(generator, sub, size), lambda size: generator_pass(generator, every, size),
            device,
        )
        d_batch = best_batch(
            (32, 64, 128, 256, 1024, 4096), lambda size: discriminator_pass(score, sub, size),
            lambda size: discriminator_pass(score, every, size), device,
        )
    naive_t, recompute_t, rollout_t, score_t, limit_t, limit_g, limit_d = [], [], [], [], [], [], []
    score_full_t, discriminator_positions, scored = [], 0, 0
    for repeat in range(repeats):
        if with_naive:
            naive_t.append(
                timed(lambda: naive_rewards(generator, score, sequences, rollout_num, naive_rollouts), device)
                * rollout_num / naive_rollouts
            )
        if with_recompute:
            recompute_t.append(
                timed(lambda: naive_recompute_rewards(generator, score, sequences, rollout_num, naive_rollouts),
                      device) * rollout_num / naive_rollouts
            )
        engine.counter.reset()
        seconds, rollouts = clock(
            engine.rollouts, device, generator, sequences, torch.Generator().manual_seed(10 + repeat)
        )
        rollout_t.append(seconds)
        score_t.append(clock(engine.rewards, device, rollouts, sequences, reward)[0])
        discriminator_positions, scored = engine.counter.discriminator_positions, engine.counter.scored_sequences
        if reward.prefix_sharing.enabled:  # the same engine feeding every completion in full, for comparison
            score_full_t.append(clock(engine.rewards, device, rollouts, sequences, score)[0])
        if with_limit:
            flat = rollouts.reshape(-1, length)
            limit_g.append(clock(generator_pass, device, generator, flat, g_batch)[0])
            limit_d.append(clock(discriminator_pass, device, score, flat, d_batch)[0])
            limit_t.append(limit_g[-1] + limit_d[-1])
    engine_t = [a + b for a, b in zip(rollout_t, score_t)]
    case = {
        "generator": kind, "T": length, "B": batch, "N": rollout_num, "V": vocab, "repeats": repeats,
        "engine_s": statistics.median(engine_t),
        "engine_rollout_s": statistics.median(rollout_t),
        "engine_score_s": statistics.median(score_t),
        "generator_positions": engine.counter.generator_positions,
        "minimum_positions": batch * rollout_num * length * (length - 1) // 2 + batch * length,
        "scored_sequences": scored,
        "discriminator_prefix_cache": bool(reward.prefix_sharing.enabled),
        "discriminator_positions": discriminator_positions,
        "discriminator_positions_full": (batch * rollout_num * (length - 1) + batch) * length,
    }
    if score_full_t:
        case["engine_score_full_discriminator_s"] = statistics.median(score_full_t)
    if with_naive:
        case.update(naive_s=statistics.median(naive_t), naive_rollouts_timed=naive_rollouts,
                    speedup_vs_naive=statistics.median(naive_t) / case["engine_s"])
    if with_recompute:
        case.update(naive_recompute_s=statistics.median(recompute_t),
                    speedup_vs_naive_recompute=statistics.median(recompute_t) / case["engine_s"])
    if with_limit:
        case.update(limit_s=statistics.median(limit_t), limit_g_batch=g_batch, limit_d_batch=d_batch,
                    limit_generator_s=statistics.median(limit_g), limit_discriminator_s=statistics.median(limit_d),
                    ratio_to_limit=case["engine_s"] / statistics.median(limit_t))
    return case


# ---- memory ------------------------------------------------------------------------------------------


def memory_probe(kind: str, length: int, batch: int, rollout_num: int, device: str, quick: bool) -> dict:
    """Run in a fresh process: one reward computation; report its peak memory.

    On CPU a thread samples the resident set size every millisecond during the call (`ru_maxrss` would also
    count the peaks of importing libraries and building the models).
    """
    import threading

    generator, _, score, reward = build_models(kind, length, device, quick)
    engine = RolloutEngine(BOS, length, rollout_num)
    sequences = engine.sample(generator, batch, rng=torch.Generator().manual_seed(1))
    before_mb = _rss_mb()
    peak = [before_mb]
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.001):
            peak[0] = max(peak[0], _rss_mb())

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    engine(generator, sequences, reward, rng=torch.Generator().manual_seed(2))
    done.set()
    watcher.join()
    peak[0] = max(peak[0], _rss_mb())
    result = {"peak_rss_mb": peak[0], "rss_before_mb": before_mb, "rss_increase_mb": peak[0] - before_mb}
    if device.startswith("cuda"):
        result["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_memory(kind: str, length: int, batch: int, rollout_num: int, device: str, quick: bool) -> dict:
    command = [sys.executable, __file__, "--memory-probe", f"{kind}:{length}:{batch}:{rollout_num}", "--device", device,
               "--threads", str(torch.get_num_threads())]
    if quick:
        command.append("--quick")
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


# ---- Trainer overhead --------------------------------------------------------------------------------


def trainer_overhead(repeats: int, quick: bool) -> dict:
    """Throughput (sequences/s) of SeqGANTrainer's MLE and discriminator phases vs plain PyTorch loops."""
    import datasets
    from transformers import TrainerCallback

    from seqgan_hf.config import SeqGANConfig
    from seqgan_hf.trainer import SeqGANTrainer

    length, batch = 20, 64
    mle_batches = 12 if quick else 40
    negatives = 128 if quick else 256
    rounds = 3
    data = torch.randint(1, 5000, (batch * mle_batches, length), generator=torch.Generator().manual_seed(3))
    dataset = datasets.Dataset.from_dict({"input_ids": data.tolist()})

    class StepClock(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter())

    def models():
        generator, discriminator, _, _ = build_models("lstm", length, "cpu", quick)
        return generator.train(), discriminator.train()

    def trainer_run(phase: str) -> float:
        generator, discriminator = models()
        clock = StepClock()
        with tempfile.TemporaryDirectory() as out:
            args = SeqGANConfig(
                output_dir=out, per_device_train_batch_size=batch, sequence_length=length, report_to=[],
                mle_epochs=1 if phase == "mle" else 0,
                discriminator_pretrain_rounds=rounds if phase == "discriminator" else 0,
                discriminator_pretrain_epochs=1, num_negatives=negatives, adversarial_iterations=0,
                disable_tqdm=True, logging_steps=10, bos_token_id=BOS, use_cpu=True,
            )
            trainer = SeqGANTrainer(model=generator, discriminator=discriminator, args=args, train_dataset=dataset,
                                    callbacks=[clock])
            trainer.train()
        per_unit = batch if phase == "mle" else 2 * negatives
        return per_unit * (len(clock.times) - 1) / (clock.times[-1] - clock.times[0])

    def plain_mle() -> float:
        generator, _ = models()
        optimizer = torch.optim.Adam(generator.parameters(), lr=0.01)
        times = []
        for index in torch.randperm(len(data)).split(batch):
            tokens = data[index]
            input_ids = torch.cat([tokens.new_full((len(tokens), 1), BOS), tokens], dim=1)
            labels = input_ids.clone()
            labels[:, 0] = -100
            loss = generator(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(generator.parameters(), 5.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            times.append(time.perf_counter())
        return batch * (len(times) - 1) / (times[-1] - times[0])

    def plain_discriminator() -> float:
        generator, discriminator = models()
        engine = RolloutEngine(BOS, length, 16)
        optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-4)
        times = []
        for _ in range(rounds):
            generator.eval()
            fake = engine.sample(generator, negatives)
            real = data[torch.randperm(len(data))[:negatives]]
            sequences = torch.cat([real, fake])
            labels = torch.cat([torch.ones(negatives), torch.zeros(negatives)]).long()
            for index in torch.randperm(len(sequences)).split(batch):
                logits = discriminator(input_ids=sequences[index], attention_mask=torch.ones_like(sequences[index])).logits
                loss = F.cross_entropy(logits.float(), labels[index]) + discriminator.regularization_loss()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(discriminator.parameters(), 5.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            times.append(time.perf_counter())
        return 2 * negatives * (len(times) - 1) / (times[-1] - times[0])

    result = {}
    for phase, plain in (("mle", plain_mle), ("discriminator", plain_discriminator)):
        ours, theirs = [], []
        for _ in range(repeats):
            theirs.append(plain())
            ours.append(trainer_run(phase))
        result[phase] = {
            "trainer_seq_per_s": statistics.median(ours),
            "plain_seq_per_s": statistics.median(theirs),
            "overhead": statistics.median(theirs) / statistics.median(ours),
        }
    return result


# ---- one adversarial iteration -----------------------------------------------------------------------


def iteration_breakdown(paper_case: dict, overhead: dict, quick: bool) -> dict:
    """Seconds per adversarial iteration of the paper's protocol (1 g-step; 5 d-steps x 3 epochs on 10k+10k)."""
    generator, *_ = build_models("lstm", 20, "cpu", quick)
    engine = RolloutEngine(BOS, 20, 16)
    sample_s = statistics.median(timed(lambda: engine.sample(generator, 64), "cpu") for _ in range(3))
    negatives_s = timed(lambda: engine.sample(generator, 4096), "cpu") * 10_000 / 4096
    generator.train()
    optimizer = torch.optim.Adam(generator.parameters(), lr=0.01)
    sequences = engine.sample(generator, 64)
    advantages = torch.rand(64, 20)

    def policy_update():
        inputs = torch.cat([sequences.new_full((64, 1), BOS), sequences[:, :-1]], dim=1)
        log_probs = torch.log_softmax(generator(input_ids=inputs).logits.float(), -1)
        loss = -(log_probs.gather(-1, sequences.unsqueeze(-1)).squeeze(-1) * advantages).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(generator.parameters(), 5.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    update_s = statistics.median(timed(policy_update, "cpu") for _ in range(5))
    d_rate = overhead["discriminator"]["plain_seq_per_s"]  # includes its own negative sampling: a slight overestimate
    parts = {
        "sample_batch": sample_s,
        "rollout_sampling": paper_case["engine_rollout_s"],
        "rollout_scoring": paper_case["engine_score_s"],
        "policy_update": update_s,
        "discriminator_negatives": 5 * negatives_s,
        "discriminator_training": 5 * 3 * 20_000 / d_rate,
    }
    total = sum(parts.values())
    return {"seconds": parts, "share": {k: v / total for k, v in parts.items()}, "total_s": total,
            "note": "discriminator parts extrapolated from measured rates (sequences/s), not run in full"}


# ---- main --------------------------------------------------------------------------------------------


def fit_exponent(xs, ys) -> float:
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def table(cases: list[dict]) -> str:
    lines = ["| generator | T | B | N | naive s | naive (no cache) s | engine s (rollout + score) | limit s | vs naive | "
             "vs naive (no cache) | vs limit | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in cases:
        lines.append(
            f"| {c['generator']} | {c['T']} | {c['B']} | {c['N']} | {c.get('naive_s', float('nan')):.2f} | "
            f"{c.get('naive_recompute_s', float('nan')):.2f} | "
            f"{c['engine_s']:.2f} ({c['engine_rollout_s']:.2f} + {c['engine_score_s']:.2f}) | "
            f"{c.get('limit_s', float('nan')):.2f} | {c.get('speedup_vs_naive', float('nan')):.1f}x | "
            f"{c.get('speedup_vs_naive_recompute', float('nan')):.1f}x | "
            f"{c.get('ratio_to_limit', float('nan')):.2f}x | {c.get('peak_mem_mb', float('nan')):.0f} |"
        )
    return "\n".join(lines)


def run_all(device: str, quick: bool) -> dict:
    batch, rollout_num = (8, 2) if quick else (64, 16)
    repeats = 1 if quick else 3
    gpt2_lengths = (8, 12) if quick else (20, 40, 80)
    cases = []
    plan = [("lstm", 20)] + [("gpt2", length) for length in gpt2_lengths]
    for kind, length in plan:
        start = time.perf_counter()
        case = run_case(kind, length, batch, rollout_num, repeats, device, quick, with_recompute=kind == "gpt2")
        memory = peak_memory(kind, length, batch, rollout_num, device, quick)
        case["peak_mem_mb"] = memory.get("cuda_max_allocated_mb", memory["peak_rss_mb"])
        case["memory"] = memory
        cases.append(case)
        print(f"[{time.perf_counter() - start:.0f}s] {json.dumps(case)}", flush=True)
    gpt2 = [c for c in cases if c["generator"] == "gpt2"]
    scaling = {"gpt2_T": {"T": [c["T"] for c in gpt2], "engine_s": [c["engine_s"] for c in gpt2],
                          "exponent_engine": fit_exponent([c["T"] for c in gpt2], [c["engine_s"] for c in gpt2]),
                          "exponent_naive": fit_exponent([c["T"] for c in gpt2], [c["naive_s"] for c in gpt2]),
                          "naive_recompute_s": [c["naive_recompute_s"] for c in gpt2],
                          "exponent_naive_recompute": fit_exponent([c["T"] for c in gpt2],
                                                                   [c["naive_recompute_s"] for c in gpt2])}}
    n_length = gpt2_lengths[len(gpt2_lengths) // 2]
    n_values = (2, 4) if quick else (4, 8, 16)
    n_times = [
        run_case("gpt2", n_length, batch, n, max(1, repeats - 1), device, quick, with_naive=False,
                 with_limit=False)["engine_s"]
        for n in n_values
    ]
    scaling["gpt2_N"] = {"T": n_length, "N": list(n_values), "engine_s": n_times,
                         "exponent_engine": fit_exponent(n_values, n_times)}
    print(json.dumps(scaling), flush=True)
    return {"cases": cases, "scaling": scaling}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (smoke test)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice); 1 avoids OpenMP barrier stalls on "
                        "a CPU shared with other jobs")
    parser.add_argument("--output", default=str(REPO / "docs" / "results" / "speed.json"))
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        kind, length, batch, rollout_num = args.memory_probe.split(":")
        print(json.dumps(memory_probe(kind, int(length), int(batch), int(rollout_num), args.device, args.quick)))
        return
    started = time.perf_counter()
    result = {
        "load_average_at_start": os.getloadavg(),
        "device": args.device,
        "machine": {
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
            "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
        },
        "quick": args.quick,
        "command": "HF_HUB_OFFLINE=1 python benchmarks/rollout_speed.py" + (" --quick" if args.quick else "")
        + ("" if args.device == "cpu" else f" --device {args.device}")
        + (f" --threads {args.threads}" if args.threads else ""),
    }
    result.update(run_all(args.device, args.quick))
    overhead = trainer_overhead(1 if args.quick else 2, args.quick)
    result["trainer_overhead"] = {phase: value["overhead"] for phase, value in overhead.items()}
    result["trainer_throughput"] = overhead
    paper = next(c for c in result["cases"] if c["generator"] == "lstm")
    result["adversarial_iteration"] = iteration_breakdown(paper, overhead, args.quick)
    if args.device == "cpu" and torch.cuda.is_available() and not args.quick:
        result["gpu_run"] = run_all("cuda", args.quick)
    result["wall_s"] = time.perf_counter() - started
    result["load_average_at_end"] = os.getloadavg()
    print(table(result["cases"]))
    print(json.dumps({k: result[k] for k in ("scaling", "trainer_overhead", "adversarial_iteration")}, indent=1))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {output} in {result['wall_s']:.0f}s")


if __name__ == "__main__":
    main()
