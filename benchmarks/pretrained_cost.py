"""Cost of one g-step with a GPT-2-small-shaped generator: full fine-tuning vs LoRA, with and without gradient
checkpointing (issue 12, item 7).

Usage:
    HF_HUB_OFFLINE=1 python benchmarks/pretrained_cost.py --threads 1 --lora-gstep-lengths 32
        # the recorded run: ~40 min of one quiet CPU core, more on a shared machine
    HF_HUB_OFFLINE=1 python benchmarks/pretrained_cost.py            # every g-step measured, torch's thread count
    HF_HUB_OFFLINE=1 python benchmarks/pretrained_cost.py --smoke    # tiny models, T=8 (~1 min): checks the script

One g-step = `SeqGANTrainer.algorithm.generator_step()`: sample B sequences, Monte Carlo rollouts (N per token),
discriminator scoring, then the policy-gradient update (forward with grad, backward, clip, optimizer step). The
trainer is built as a user would build it (`SeqGANTrainer(model, discriminator, SeqGANConfig(...), train_dataset)`)
and set up with `trainer._setup_models(0)`; nothing in the package is changed. The g-step is timed in parts by
wrapping, on the instances only, `RolloutEngine.sample`, `.rollouts`, `.rewards`, `SeqGAN.token_log_probs`,
`Runtime.step`, the accelerator's `backward` and the optimizer's `step`.

Generator: `GPT2LMHeadModel(GPT2Config(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024))`,
random weights, float32. Discriminator: a small `GPT2ForSequenceClassification` (2 layers, 256 wide, 4 heads, the
same vocabulary, num_labels=2), so that the generator's cost dominates. Configurations: full fine-tuning or LoRA
(peft, r=16, alpha=32, c_attn + c_proj, applied by hand with `get_peft_model`), gradient checkpointing off or on
(`gradient_checkpointing_enable(use_reentrant=False)` on the transformers model before peft wraps it).

What runs, each in a fresh process (so that memory peaks are its own):

* `gstep`: one real g-step, per (T, full/LoRA), gradient checkpointing off;
* `update`: the same g-step with the rollouts and scoring replaced by random rewards (sampling still runs), per
  (T, full/LoRA, checkpointing off/on), twice: the second update runs with the optimizer state in place, as every
  g-step after the first does in training (its memory peak is the one training sees). Rollouts run without grad,
  in eval mode, where gradient checkpointing does nothing, so they are not repeated for checkpointing on: its
  total = rollout part of the `gstep` of the same (T, full/LoRA) + its own `update` part. The `update` run with
  checkpointing off repeats the `gstep`'s update (a check of run-to-run spread, and an update-only memory peak
  comparable across checkpointing on/off).

Times: wall seconds, and CPU seconds of the process (`time.process_time`, all its threads) per part: on a machine
shared with other jobs the CPU seconds move much less than the wall seconds.

Memory: on CPU, resident set size: after the trainer is set up, `ru_maxrss` at the end of the process, and the
peak during each part of the g-step (a thread reads /proc/self/statm every 2 ms). On CUDA,
`torch.cuda.max_memory_allocated` per part instead (and everything runs on the GPU). Writes
docs/results/pretrained_cost.json and prints a table.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

VOCAB = 50257
EOS = 50256  # GPT-2's <|endoftext|>: start token, EOS and the discriminator's pad token
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---- models ------------------------------------------------------------------------------------------


def generator_config(smoke: bool):
    from transformers import GPT2Config

    if smoke:
        return GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=VOCAB, n_positions=1024)
    return GPT2Config(n_layer=12, n_embd=768, n_head=12, vocab_size=VOCAB, n_positions=1024)


def discriminator_config(smoke: bool):
    from transformers import GPT2Config

    width, layers, heads = (32, 1, 2) if smoke else (256, 2, 4)
    return GPT2Config(n_layer=layers, n_embd=width, n_head=heads, vocab_size=VOCAB, n_positions=1024,
                      num_labels=2, pad_token_id=EOS)


def build_trainer(spec: dict, output_dir: str):
    """The generator (full or LoRA, checkpointing on or off), the discriminator and a set-up `SeqGANTrainer`."""
    import datasets
    from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel

    from seqgan_hf import SeqGANConfig, SeqGANTrainer

    torch.manual_seed(0)
    model = GPT2LMHeadModel(generator_config(spec["smoke"]))
    if spec["gc"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if spec["lora"]:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["c_attn", "c_proj"],
                                                 task_type="CAUSAL_LM"))
    discriminator = GPT2ForSequenceClassification(discriminator_config(spec["smoke"]))
    length = spec["T"]
    data = torch.randint(0, EOS, (64, length), generator=torch.Generator().manual_seed(1))
    args = SeqGANConfig(
        output_dir=output_dir, save_strategy="no", report_to="none", disable_tqdm=True,
        per_device_train_batch_size=spec["B"], sequence_length=length, rollout_num=spec["N"],
        mle_epochs=0, discriminator_pretrain_rounds=0, adversarial_iterations=1, g_steps=1, d_steps=0,
        learning_rate=1e-5, bos_token_id=EOS, use_cpu=spec["device"] == "cpu",
    )
    trainer = SeqGANTrainer(model, discriminator, args,
                            train_dataset=datasets.Dataset.from_dict({"input_ids": data.tolist()}))
    trainer._setup_models(0)
    return trainer


# ---- one probe (a fresh process) ---------------------------------------------------------------------


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


class Meter:
    """Wall time and memory peak of each named part of the g-step (parts may nest: the innermost is charged)."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}  # CPU time of the whole process (all threads) in each part
        self.peak: dict[str, float] = {}
        self.part = "other"
        self._done = threading.Event()
        if not self.cuda:
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()

    def _poll(self) -> None:
        while not self._done.wait(0.002):
            value, part = rss_mib(), self.part
            if value > self.peak.get(part, 0.0):
                self.peak[part] = value

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            outer = self.part
            self._sync()
            if self.cuda:
                torch.cuda.reset_peak_memory_stats()
            self.part = name
            start, cpu_start = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self._sync()
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
                self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + time.process_time() - cpu_start
                if self.cuda:
                    self.peak[name] = max(self.peak.get(name, 0.0), torch.cuda.max_memory_allocated() / 2**20)
                else:
                    self.peak[name] = max(self.peak.get(name, 0.0), rss_mib())
                self.part = outer

        return timed

    def take(self) -> tuple[dict, dict, dict]:
        """(seconds, CPU seconds, peaks) of the parts so far; the next g-step starts from empty ones."""
        taken = self.seconds, self.cpu_seconds, self.peak
        self.seconds, self.cpu_seconds, self.peak = {}, {}, {}
        return taken

    def stop(self) -> None:
        self._done.set()


def step_summary(seconds: dict, cpu: dict, peak: dict) -> dict:
    rollout_s = seconds["sample"] + seconds.get("rollouts", 0.0) + seconds.get("scoring", 0.0)
    rollout_cpu = cpu["sample"] + cpu.get("rollouts", 0.0) + cpu.get("scoring", 0.0)
    return {
        "seconds": seconds,
        "rollout_part_s": rollout_s,  # sample + rollouts + scoring
        "update_part_s": seconds["gstep"] - rollout_s,  # forward, loss, backward, clip, optimizer, metrics
        "total_s": seconds["gstep"],
        "cpu_seconds": cpu,
        "rollout_part_cpu_s": rollout_cpu,
        "update_part_cpu_s": cpu["gstep"] - rollout_cpu,
        "peak_by_part_mib": peak,
        "peak_gstep_mib": max(v for k, v in peak.items() if k != "other"),  # parts nest: the max over them
    }


def probe(spec: dict) -> dict:
    """Build everything, run one g-step (update-only runs: two, the second with the optimizer state in place),
    report times and memory."""
    device = spec["device"]
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = build_trainer(spec, output_dir)
        algorithm, engine, runtime = trainer.algorithm, trainer.rollout_engine, trainer.runtime
        generator = runtime.model("generator")
        trainable = [p for p in generator.parameters() if p.requires_grad]
        result = {
            **spec,
            "trainable_params": sum(p.numel() for p in trainable),
            "total_params": sum(p.numel() for p in generator.parameters()),
            "discriminator_params": sum(p.numel() for p in trainer.discriminator.parameters()),
            "generator_class": type(generator).__name__,
            "optimizer": type(getattr(runtime.optimizers["generator"], "optimizer",
                                      runtime.optimizers["generator"])).__name__,
            "gradient_checkpointing": bool(getattr(generator, "is_gradient_checkpointing", False)),
            "torch_threads": torch.get_num_threads(),
            "seqgan_hf": sys.modules["seqgan_hf"].__file__,
        }
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            result["cuda_allocated_after_build_mib"] = torch.cuda.memory_allocated() / 2**20
        result["rss_after_build_mib"] = rss_mib()
        result["maxrss_before_gstep_mib"] = maxrss_mib()

        meter = Meter(device)
        engine.sample = meter.wrap("sample", engine.sample)
        if spec["mode"] == "gstep":
            engine.rollouts = meter.wrap("rollouts", engine.rollouts)
            engine.rewards = meter.wrap("scoring", engine.rewards)
        else:  # update only: no rollouts, no scoring; rewards drawn at random in [0, 1)
            engine.rollouts = lambda model, sequences, rng=None: None
            engine.rewards = lambda rollouts, sequences, reward: torch.rand(
                sequences.shape, generator=torch.Generator().manual_seed(2)).to(sequences.device)
        # The policy's forward with grad (with the log-softmax where one method does both).
        forward = "policy_logits" if hasattr(algorithm, "policy_logits") else "token_log_probs"
        setattr(algorithm, forward, meter.wrap("forward", getattr(algorithm, forward)))
        runtime.step = meter.wrap("step", runtime.step)
        runtime.accelerator.backward = meter.wrap("backward", runtime.accelerator.backward)
        optimizer = runtime.optimizers["generator"]
        optimizer.step = meter.wrap("optimizer", optimizer.step)
        # A few values of every trainable tensor, to check that the step moved them (LoRA B starts at zero).
        before = [p.detach().flatten()[:256].clone() for p in trainable]

        load_start = os.getloadavg()
        gstep = meter.wrap("gstep", algorithm.generator_step)
        gstep()
        result.update(step_summary(*meter.take()))
        changed = sum(not torch.equal(b, p.detach().flatten()[:256]) for b, p in zip(before, trainable))
        if spec["mode"] == "update":
            # A later g-step: the optimizer state (AdamW moments) now lives through the whole update.
            gc.collect()
            rss_before = rss_mib()
            gstep()
            result["second_step"] = {"rss_before_mib": rss_before, **step_summary(*meter.take())}
        meter.stop()
        result.update({
            "maxrss_mib": maxrss_mib(),
            "trainable_tensors_changed": f"{changed}/{len(trainable)}",
            "load_average_before": load_start,
            "load_average_after": os.getloadavg(),
            "generator_positions": engine.counter.generator_positions,
        })
        if device.startswith("cuda"):
            result["cuda_max_allocated_mib"] = result["peak_gstep_mib"]
        return result


def run_probe(spec: dict, args) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--probe", json.dumps(spec)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-8000:])
        raise RuntimeError(f"probe {spec} failed with exit code {done.returncode}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = time.perf_counter() - started
    return result


# ---- the plan and the table ----------------------------------------------------------------------------


def label(lora: bool, gc_on: bool) -> str:
    return ("LoRA r=16" if lora else "full") + (" + GC" if gc_on else "")


def compose(probes: list[dict], lengths, kinds) -> list[dict]:
    """One row per (T, full/LoRA, GC): measured g-steps for GC off, rollout part + update-only run for GC on.

    Where the LoRA g-step was not run at some T (`--lora-gstep-lengths`), its rollout part is estimated: the full
    model's rollout part at that T times the LoRA / full ratio of rollout parts at the largest T where both ran;
    its rollout-part peak: the full model's at that T, shifted by the difference of the RSS after build.
    """
    rows = []
    for length in lengths:
        for lora in kinds:
            gstep = find(probes, "gstep", length, lora, False)
            estimated = gstep is None
            if estimated:
                full = find(probes, "gstep", length, False, False)
                both = [t for t in lengths
                        if find(probes, "gstep", t, True, False) and find(probes, "gstep", t, False, False)]
                if full is None or not both:
                    continue
                ref = max(both)
                ratio = find(probes, "gstep", ref, True, False)["rollout_part_s"] / \
                    find(probes, "gstep", ref, False, False)["rollout_part_s"]
                rollout_s = full["rollout_part_s"] * ratio
                rollout_cpu = full["rollout_part_cpu_s"] * (
                    find(probes, "gstep", ref, True, False)["rollout_part_cpu_s"]
                    / find(probes, "gstep", ref, False, False)["rollout_part_cpu_s"])
                shift = (find(probes, "update", length, lora, False)["rss_after_build_mib"]
                         - full["rss_after_build_mib"])
                rollout_peak = rollout_part_peak(full) + shift
                basis = f"full model's rollout part at T={length} x LoRA/full ratio {ratio:.3f} at T={ref}"
            else:
                rollout_s, rollout_peak = gstep["rollout_part_s"], rollout_part_peak(gstep)
                rollout_cpu = gstep["rollout_part_cpu_s"]
                basis = "measured"
            for gc_on in (False, True):
                update = find(probes, "update", length, lora, gc_on)
                row = {
                    "config": label(lora, gc_on), "T": length, "lora": lora, "gradient_checkpointing": gc_on,
                    "rollout_s": rollout_s, "rollout_cpu_s": rollout_cpu, "rollout_basis": basis,
                    "trainable_params": update["trainable_params"],
                    "rss_after_build_mib": update["rss_after_build_mib"],
                    "update_only_peak_mib": update["peak_gstep_mib"],
                    "update_only_update_s": update["update_part_s"],
                    "rollout_peak_mib": rollout_peak,
                    "second_update_s": update["second_step"]["update_part_s"],
                    "second_update_cpu_s": update["second_step"]["update_part_cpu_s"],
                    "second_update_peak_mib": update["second_step"]["peak_gstep_mib"],
                    # A later g-step's peak: its update's (measured: the second update), or its rollouts' on top of
                    # the optimizer state (AdamW: two float32 moments per trainable parameter, by arithmetic). The
                    # RSS before the second update is no base for the rollouts: it holds heap the first update
                    # freed, which the rollouts would reuse.
                    "optimizer_state_mib": 2 * 4 * update["trainable_params"] / 2**20,
                    "later_gstep_peak_mib": max(
                        update["second_step"]["peak_gstep_mib"],
                        rollout_peak + 2 * 4 * update["trainable_params"] / 2**20),
                }
                if gc_on or estimated:
                    row.update(update_s=update["update_part_s"], total_s=rollout_s + update["update_part_s"],
                               update_cpu_s=update["update_part_cpu_s"],
                               total_cpu_s=rollout_cpu + update["update_part_cpu_s"],
                               peak_mib=max(rollout_peak, update["peak_gstep_mib"]), composed=True,
                               estimated=estimated)
                else:
                    row.update(update_s=gstep["update_part_s"], total_s=gstep["total_s"],
                               update_cpu_s=gstep["update_part_cpu_s"], total_cpu_s=gstep["cpu_seconds"]["gstep"],
                               peak_mib=gstep["peak_gstep_mib"], maxrss_mib=gstep["maxrss_mib"],
                               composed=False, estimated=False)
                rows.append(row)
    return rows


def find(probes: list[dict], mode: str, length: int, lora: bool, gc_on: bool) -> dict | None:
    return next((p for p in probes if p["mode"] == mode and p["T"] == length and p["lora"] == lora
                 and p["gc"] == gc_on), None)


def rollout_part_peak(gstep: dict) -> float:
    return max(v for k, v in gstep["peak_by_part_mib"].items() if k in ("sample", "rollouts", "scoring"))


def table(rows: list[dict], cuda: bool) -> str:
    unit = "CUDA max allocated MiB" if cuda else "peak RSS MiB"
    lines = [f"| config | T | rollout s | update s (2nd g-step) | total s | CPU s (rollout / update / total) | "
             f"{unit}, 1st g-step | {unit}, later g-steps | {'allocated' if cuda else 'RSS'} after build MiB | "
             "trainable params |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mark = "*" if r["composed"] else ""
        rollout_mark = "†" if r["estimated"] else mark
        lines.append(
            f"| {r['config']} | {r['T']} | {r['rollout_s']:.1f}{rollout_mark} | {r['update_s']:.2f} "
            f"({r['second_update_s']:.2f}) | "
            f"{r['total_s']:.1f}{rollout_mark} | {r['rollout_cpu_s']:.0f}{rollout_mark} / {r['update_cpu_s']:.1f} / "
            f"{r['total_cpu_s']:.0f}{rollout_mark} | {r['peak_mib']:.0f}{rollout_mark} | "
            f"{r['later_gstep_peak_mib']:.0f}{'†' if r['estimated'] else '‡'} | "
            f"{r['rss_after_build_mib']:.0f} | {r['trainable_params']:,} |"
        )
    lines.append("* composed: rollout part from the g-step of the same T and full/LoRA (checkpointing off), update "
                 "part from this configuration's update-only run; peak = max(that g-step's rollout-part peak, this "
                 "configuration's update-only peak).")
    lines.append("‡ later g-steps (the optimizer state exists from the first step on): max(the update-only run's "
                 "second-update peak, the rollout part's peak + the AdamW moments' size).")
    if any(r["estimated"] for r in rows):
        lines.append("† estimated, not measured: " + next(r["rollout_basis"] for r in rows if r["estimated"])
                     + "; update part measured (update-only run).")
    return "\n".join(lines)


def machine(device: str) -> dict:
    import peft
    import transformers

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(), "cpu_model": cpu, "platform": platform.platform(),
        "memory_gib": os.sysconf("SC_PHYS_PAGES") * PAGE / 2**30,
        "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
        "peft": peft.__version__, "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
    }


def code_version() -> dict:
    """Which seqgan_hf is measured: its path, and the git commit and state of the package where REPO is a clone."""
    import seqgan_hf

    def git(*command: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(REPO), *command], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--", "seqgan_hf")
    return {"seqgan_hf": seqgan_hf.__file__, "git_head": git("rev-parse", "HEAD"),
            "package_clean": None if status is None else status == ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny models (2 layers, 64 wide), T=8, B=4, N=2: checks the script")
    parser.add_argument("--lengths", type=int, nargs="+", default=None, help="T values (default 32 64)")
    parser.add_argument("--batch", type=int, default=None, help="B (default 16)")
    parser.add_argument("--rollout-num", type=int, default=None, help="N (default 8)")
    parser.add_argument("--lora-gstep-lengths", type=int, nargs="*", default=None,
                        help="T values at which the LoRA g-step (with rollouts) runs (default: every T); elsewhere "
                        "its rollout part is estimated from the full model's (see compose), and marked so")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--output", default=None,
                        help="JSON result (default docs/results/pretrained_cost.json; smoke: a temp file)")
    parser.add_argument("--note", default=None, help="free text stored in the JSON (e.g. which code was measured)")
    parser.add_argument("--recompose", metavar="JSON",
                        help="recompute the rows and the table of a finished run's JSON from its probes (no "
                        "measuring); the file is rewritten in place")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.probe:
        print(json.dumps(probe(json.loads(args.probe))), flush=True)
        return

    if args.recompose:
        path = Path(args.recompose)
        result = json.loads(path.read_text())
        result["rows"] = compose(result["probes"], result["sizes"]["T"], (False, True))
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(table(result["rows"], result["device"].startswith("cuda")))
        return
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    lengths = args.lengths or ([8] if args.smoke else [32, 64])
    batch = args.batch or (4 if args.smoke else 16)
    rollout_num = args.rollout_num or (2 if args.smoke else 8)
    output = Path(args.output) if args.output else (
        Path(tempfile.gettempdir()) / "pretrained_cost_smoke.json" if args.smoke
        else REPO / "docs" / "results" / "pretrained_cost.json")
    kinds = (False, True)  # full, LoRA
    lora_gstep = lengths if args.lora_gstep_lengths is None else args.lora_gstep_lengths
    started = time.perf_counter()
    result = {
        "command": " ".join(["HF_HUB_OFFLINE=1", "python", "benchmarks/pretrained_cost.py", *sys.argv[1:]]),
        "note": args.note, "code": code_version(),
        "machine": machine(device), "device": device, "smoke": args.smoke,
        "lora_gstep_lengths": lora_gstep,
        "sizes": {"B": batch, "N": rollout_num, "T": lengths, "vocab": VOCAB,
                  "generator": generator_config(args.smoke).to_diff_dict(),
                  "discriminator": discriminator_config(args.smoke).to_diff_dict()},
        "load_average_at_start": os.getloadavg(),
        "probes": [],
    }
    # Update-only runs first (minutes in all), then the real g-steps (rollouts: minutes each, O(T^2)).
    plan = [dict(mode="update", T=length, lora=lora, gc=gc_on) for length in lengths for lora in kinds
            for gc_on in (False, True)]
    plan += [dict(mode="gstep", T=length, lora=lora, gc=False) for length in lengths for lora in kinds
             if not lora or length in lora_gstep]
    for step in plan:
        spec = {**step, "B": batch, "N": rollout_num, "smoke": args.smoke, "device": device}
        probe_result = run_probe(spec, args)
        result["probes"].append(probe_result)
        print(f"[{time.perf_counter() - started:.0f}s] {json.dumps(probe_result)}", flush=True)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=1) + "\n")  # partial results survive an interruption
    result["rows"] = compose(result["probes"], lengths, kinds)
    result["load_average_at_end"] = os.getloadavg()
    result["wall_s"] = time.perf_counter() - started
    output.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result["rows"], device.startswith("cuda")))
    print(f"wrote {output} in {result['wall_s']:.0f}s")


if __name__ == "__main__":
    main()
