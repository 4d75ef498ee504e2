"""Reproduce the SeqGAN paper's synthetic-oracle table (Yu et al., 2017, Table 1 / Figure 2), with baselines.

Usage:
    HF_HUB_OFFLINE=1 python benchmarks/reproduce_oracle.py --protocol cpu --seeds 0 1 2
    HF_HUB_OFFLINE=1 python benchmarks/reproduce_oracle.py --protocol paper --seeds 0 1 2   # GPU-sized
    HF_HUB_OFFLINE=1 python benchmarks/reproduce_oracle.py --smoke                          # < 1 minute

On one oracle (an LSTM with N(0, 1) parameters built from `--oracle-seed`, or the paper's own parameters
from `--oracle-params FILE.npz`) and for every seed of `--seeds`, it trains and measures four generators:

* `random`: the untrained generator (the paper's N(0, 0.1^2) initialisation);
* `mle`: MLE pretraining, then as many further MLE updates as SeqGAN makes g-steps, so that MLE and SeqGAN
  get the same total number of generator updates (mle_epochs * batches + adversarial_iterations * g_steps);
* `ss`: scheduled sampling (Bengio et al., 2015) instead of MLE, from the untrained generator, for the same total
  number of updates as `mle`: each input token is the model's own sample with a probability rising linearly
  from 0 to `ss_probability` (exact, step by step, for the LSTM; `seqgan_hf.baselines.ScheduledSamplingTrainer`);
* `pg_bleu`: from the same MLE-pretrained generator, policy gradient with Monte Carlo rollouts whose reward is
  BLEU-4 against the training set (no discriminator), same number of g-steps;
* `seqgan`: from the same MLE-pretrained generator, discriminator pretraining then adversarial training.

Measured: NLL_oracle (oracle NLL of `final_samples` fresh samples; quality) and NLL_test (the generator's NLL
of the held-out oracle test set; coverage/diversity) of each final generator; the learning curve (NLL_oracle
every `eval_every` adversarial iterations, through `SeqGANTrainer`'s evaluator / `log()` machinery, on a
smaller sample); and, for the seeds in `--sweep-seeds`, a temperature sweep of the final mle / pg_bleu /
seqgan generators (NLL_oracle vs NLL_test at each temperature).

Writes `<output-dir>/<stem>.json`, `<stem>_curve.png` (NLL_oracle vs adversarial iteration, MLE as a flat
reference line like the paper's Figure 2), `<stem>_sweep.png`, and prints the table. The JSON is rewritten
after every run, so an interrupted run keeps what it measured; `--merge` adds new seeds to an existing file.

Protocols (`PROTOCOLS` below has every number):

* `paper`: docs/PROTOCOL.md exactly: 10k oracle sequences, MLE 120 epochs, the paper's CNN (12 widths,
  1,720 filters), D pretraining 50 rounds x 3 epochs on 10k negatives + 10k positives, 200 adversarial
  iterations of 1 g-step (batch 64, 16 rollouts) and 5 d-steps x 3 epochs on 10k fresh negatives. Hours on CPU.
* `cpu`: the same algorithm, data, generator (vocab 5000, T=20, LSTM 32/32, Adam 0.01, clip 5, batch 64,
  16 rollouts) and oracle, shrunk where the time goes:
    - discriminator: 6 widths [2,3,4,5,10,20] x [50,50,50,50,40,40] filters (about 1/10 of the paper CNN's
      multiply-adds per sequence: 1.26M vs 13.5M; `discriminator_macs_per_sequence` in the JSON); pretraining 10 rounds x 1 epoch on
      2,500 negatives + 2,500 positives (paper: 50 x 3 on 10k + 10k); per adversarial iteration 1 d-step x
      1 epoch on 2,500 + 2,500 (paper: 5 x 3 on 10k + 10k). The paper's D schedule is ~300k sequence passes
      per iteration (hours on 2 cores); this is 5k, 1/60 of it on a ~10x cheaper network.
    - MLE pretraining: 20 epochs (paper 120): 120 epochs alone take ~20 CPU minutes per seed.
    - adversarial iterations: 50 (paper 200; paper-era code 800): a g-step (64 x 16 x 19 rollouts) costs
      ~5 s on one CPU core with the current rollout engine, so 200 would not fit in the hour.
    - curve: NLL_oracle on 2,000 samples and NLL_test on 2,000 test sequences every 5 iterations; final
      numbers use 10,000 samples and the full 10,000-sequence test set, as in the paper.
  Designed to fit about 60 minutes for 3 seeds on 2 idle CPU cores: seed 0 with its temperature sweep used
  ~850 s of CPU time (1,327 s wall on a machine shared with three other jobs), i.e. ~40 CPU-minutes for the
  3-seed table; see docs/RESULTS.md for what was actually run.
* `--smoke`: a tiny oracle (vocab 100, T 8), every code path for one or two iterations: under a minute.

`--threads` (default 1): on a 2-core machine shared with other jobs, 2 intra-op threads were measured
~10x slower than 1 (oversubscription); on an idle machine 2 threads may help a little.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402
from transformers import PrinterCallback, TrainerCallback, set_seed  # noqa: E402

from seqgan_hf import (  # noqa: E402
    CNNDiscriminatorConfig,
    CNNForSequenceClassification,
    LSTMConfig,
    LSTMForCausalLM,
    OracleEvaluator,
    OracleTask,
    SeqGANConfig,
    SeqGANTrainer,
)
from seqgan_hf.baselines import PGBleuTrainer, mle_baseline_trainer, scheduled_sampling_trainer  # noqa: E402
from seqgan_hf.models.cnn import PAPER_FILTER_SIZES, PAPER_NUM_FILTERS  # noqa: E402
from seqgan_hf.sweep import plot_sweeps, temperature_sweep  # noqa: E402

METHODS = ("random", "mle", "ss", "pg_bleu", "seqgan")
PAPER_TABLE1 = {"random": 10.310, "mle": 9.038, "ss": 8.985, "pg_bleu": 8.946, "seqgan": 8.736}

PROTOCOLS: dict[str, dict] = {
    "paper": dict(
        vocab_size=5000, embedding_dim=32, hidden_dim=32, sequence_length=20, batch_size=64,
        num_train=10_000, num_test=10_000, mle_epochs=120, learning_rate=0.01, max_grad_norm=5.0,
        d_embedding_dim=64, d_filter_sizes=list(PAPER_FILTER_SIZES), d_num_filters=list(PAPER_NUM_FILTERS),
        d_learning_rate=1e-4, d_batch_size=64, d_pretrain_rounds=50, d_pretrain_epochs=3, num_negatives=10_000,
        adversarial_iterations=200, g_steps=1, d_steps=5, d_epochs=3, rollout_num=16,
        eval_every=10, curve_samples=5000, curve_test=5000, final_samples=10_000, ss_probability=0.25,
        pretrain_eval_every_epochs=10,
        sweep_temperatures=[0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.35], sweep_samples=10_000, sweep_test=10_000,
    ),
    "cpu": dict(
        vocab_size=5000, embedding_dim=32, hidden_dim=32, sequence_length=20, batch_size=64,
        num_train=10_000, num_test=10_000, mle_epochs=20, learning_rate=0.01, max_grad_norm=5.0,
        d_embedding_dim=64, d_filter_sizes=[2, 3, 4, 5, 10, 20], d_num_filters=[50, 50, 50, 50, 40, 40],
        d_learning_rate=1e-4, d_batch_size=64, d_pretrain_rounds=10, d_pretrain_epochs=1, num_negatives=2500,
        adversarial_iterations=50, g_steps=1, d_steps=1, d_epochs=1, rollout_num=16,
        eval_every=5, curve_samples=2000, curve_test=2000, final_samples=10_000, ss_probability=0.25,
        pretrain_eval_every_epochs=2,
        sweep_temperatures=[0.8, 0.9, 1.0, 1.1, 1.2, 1.35], sweep_samples=5000, sweep_test=5000,
    ),
}
SMOKE = dict(
    vocab_size=100, embedding_dim=8, hidden_dim=8, sequence_length=8, batch_size=16,
    num_train=128, num_test=128, mle_epochs=1, d_embedding_dim=8, d_filter_sizes=[2, 3], d_num_filters=[4, 4],
    d_pretrain_rounds=1, d_pretrain_epochs=1, num_negatives=32, adversarial_iterations=2, d_steps=1, d_epochs=1,
    rollout_num=2, eval_every=1, pretrain_eval_every_epochs=1, curve_samples=32, curve_test=64, final_samples=64,
    sweep_temperatures=[0.8, 1.0, 1.25], sweep_samples=32, sweep_test=64,
)


def discriminator_macs(p: dict) -> int:
    """Multiply-adds of one CNN forward over one sequence (convolutions + highway + output layer)."""
    length, embedding = p["sequence_length"], p["d_embedding_dim"]
    conv = sum(max(length - width + 1, 1) * width * embedding * filters
               for width, filters in zip(p["d_filter_sizes"], p["d_num_filters"]))
    total = sum(p["d_num_filters"])
    return conv + 2 * total * total + 2 * total


class EvaluateEvery(TrainerCallback):
    """Ask the trainer to evaluate every `every` training units after unit `start` (the learning curve)."""

    def __init__(self, every: int, start: int = 0):
        self.every, self.start = every, start

    def on_step_end(self, args, state, control, **kwargs):
        done = state.global_step - self.start
        if done > 0 and done % self.every == 0:
            control.should_evaluate = True
        return control


def curve_from_history(log_history: list[dict], start: int = 0, scale: int = 1) -> tuple[list, list]:
    """[(iteration, NLL_oracle)], [(iteration, NLL_test)] from the `eval_*` entries of a trainer's log."""
    seen, oracle, test = set(), [], []
    for entry in log_history:
        if "eval_nll_oracle" not in entry or entry["step"] in seen or entry["step"] <= start:
            continue
        seen.add(entry["step"])
        iteration = (entry["step"] - start) / scale
        iteration = int(iteration) if float(iteration).is_integer() else iteration
        oracle.append([iteration, entry["eval_nll_oracle"]])
        test.append([iteration, entry["eval_nll_test"]])
    return oracle, test


class Benchmark:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.protocol = args.protocol
        self.p = dict(PROTOCOLS[args.protocol])
        if args.smoke:
            self.p.update(SMOKE)
        if args.adversarial_iterations is not None:
            self.p["adversarial_iterations"] = args.adversarial_iterations
        self.seqgan_overrides = dict(item.split("=", 1) for item in args.seqgan_override)
        self.workdir = tempfile.mkdtemp(prefix="reproduce_oracle_")  # trainers' output_dir (nothing saved)
        self.runs: list[dict] = []
        self.pretrain_curves: dict[int, dict] = {}  # seed -> MLE pretraining curve (when pretrained here)
        self.sweeps: list[dict] = []
        self.started = time.time()
        self.load_average = os.getloadavg() if hasattr(os, "getloadavg") else None

    # ---- models and configs -----------------------------------------------------------------------

    def generator(self, seed: int) -> LSTMForCausalLM:
        p = self.p
        set_seed(seed)
        return LSTMForCausalLM(LSTMConfig(vocab_size=p["vocab_size"], embedding_dim=p["embedding_dim"],
                                          hidden_dim=p["hidden_dim"], sequence_length=p["sequence_length"]))

    def discriminator(self, seed: int) -> CNNForSequenceClassification:
        p = self.p
        torch.manual_seed(10_000 + seed)
        return CNNForSequenceClassification(CNNDiscriminatorConfig(
            vocab_size=p["vocab_size"], embedding_dim=p["d_embedding_dim"], filter_sizes=p["d_filter_sizes"],
            num_filters=p["d_num_filters"], num_labels=2))

    def config(self, seed: int, name: str, **fields) -> SeqGANConfig:
        p = self.p
        values = dict(
            output_dir=os.path.join(self.workdir, f"{name}-seed{seed}"), seed=seed, report_to="none",
            disable_tqdm=True, save_strategy="no", logging_steps=10**9,
            sequence_length=p["sequence_length"], per_device_train_batch_size=p["batch_size"],
            learning_rate=p["learning_rate"], mle_learning_rate=p["learning_rate"], max_grad_norm=p["max_grad_norm"],
            discriminator_learning_rate=p["d_learning_rate"], discriminator_batch_size=p["d_batch_size"],
            num_negatives=p["num_negatives"], rollout_num=p["rollout_num"], g_steps=p["g_steps"],
            mle_epochs=0, discriminator_pretrain_rounds=0, discriminator_pretrain_epochs=p["d_pretrain_epochs"],
            adversarial_iterations=0, d_steps=0, d_epochs=p["d_epochs"],
        )
        values.update(fields)
        return SeqGANConfig(**values)

    def quiet(self, trainer):
        trainer.remove_callback(PrinterCallback)
        return trainer

    # ---- one seed -----------------------------------------------------------------------------------

    def run_seed(self, seed: int) -> None:
        p, task = self.p, self.task
        curve_eval = OracleEvaluator(self.curve_task, num_samples=p["curve_samples"], seed=1000 + seed)
        final_eval = OracleEvaluator(task, num_samples=p["final_samples"], seed=2000 + seed)
        methods = self.args.methods
        # random: the untrained generator
        clock = time.time()
        generator = self.generator(seed)
        if "random" in methods:
            self.record("random", seed, generator, final_eval, clock, curve=[], updates=0)

        # MLE pretraining (shared by mle, pg_bleu and seqgan), or a saved one (--pretrained)
        clock = time.time()
        saved = os.path.join(self.args.pretrained, f"mle_pretrain-seed{seed}") if self.args.pretrained else None
        if saved and os.path.isdir(saved):
            pretrained = LSTMForCausalLM.from_pretrained(saved)
            mle_updates = p["mle_epochs"] * math.ceil(p["num_train"] / p["batch_size"])
            start_point = {f"eval_{k}": v for k, v in curve_eval(pretrained).items()}
            self.log(f"seed {seed}: MLE-pretrained generator loaded from {saved}")
        else:
            steps_per_epoch = math.ceil(p["num_train"] / p["batch_size"])
            trainer = self.quiet(SeqGANTrainer(
                model=generator, discriminator=self.discriminator(seed),
                args=self.config(seed, "mle_pretrain", mle_epochs=p["mle_epochs"]),
                train_dataset=task.train_dataset(), evaluator=curve_eval,
                callbacks=[EvaluateEvery(steps_per_epoch * p["pretrain_eval_every_epochs"])]))
            trainer.train()
            mle_updates = trainer.state.global_step
            pretrained = copy.deepcopy(trainer.model).cpu()
            start_point = trainer.phase_metrics["mle"]
            # NLL_oracle / NLL_test along MLE pretraining, by epoch: shows whether MLE overfits the training set.
            oracle_curve, test_curve = curve_from_history(trainer.state.log_history, 0, steps_per_epoch)
            self.pretrain_curves[seed] = {"epoch_nll_oracle": oracle_curve, "epoch_nll_test": test_curve}
            self.save_model(pretrained, f"mle_pretrain-seed{seed}")
        start_oracle, start_test = start_point["eval_nll_oracle"], start_point["eval_nll_test"]
        pretrain_time = time.time() - clock
        self.log(f"seed {seed}: MLE pretraining {p['mle_epochs']} epochs ({mle_updates} updates) in "
                 f"{pretrain_time:.0f} s: NLL_oracle {start_oracle:.3f} (curve sample), NLL_test {start_test:.3f}")
        if "mle" in methods:
            self.run_mle(seed, pretrained, final_eval, curve_eval, start_oracle, start_test, mle_updates,
                         pretrain_time)
        if "ss" in methods:
            self.run_ss(seed, final_eval, mle_updates + p["adversarial_iterations"] * p["g_steps"])
        if "pg_bleu" in methods:
            self.run_pg_bleu(seed, pretrained, final_eval, curve_eval, start_oracle, start_test, mle_updates)
        if "seqgan" in methods:
            self.run_seqgan(seed, pretrained, final_eval, curve_eval, start_oracle, start_test, mle_updates)
        self.run_sweeps(seed)

    def run_mle(self, seed, pretrained, final_eval, curve_eval, start_oracle, start_test, mle_updates, pretrain_time):
        """MLE continued for as many updates as SeqGAN's g-steps."""
        p, task = self.p, self.task
        a_iters, g_steps, every = p["adversarial_iterations"], p["g_steps"], p["eval_every"]
        clock = time.time()
        trainer = self.quiet(mle_baseline_trainer(
            copy.deepcopy(pretrained), self.config(seed, "mle"), task.train, num_updates=a_iters * g_steps,
            evaluator=curve_eval, callbacks=[EvaluateEvery(every * g_steps)]))
        trainer.train()
        curve, curve_test = curve_from_history(trainer.state.log_history, 0, g_steps)
        self.record("mle", seed, trainer.model, final_eval, clock, [[0, start_oracle]] + curve,
                    mle_updates + trainer.state.global_step, [[0, start_test]] + curve_test,
                    extra={"mle_pretrain_updates": mle_updates, "mle_pretrain_time_s": round(pretrain_time, 1)})

    def run_ss(self, seed, final_eval, total_updates):
        """Scheduled sampling from the untrained generator, as many updates as MLE pretraining + continuation."""
        p, task = self.p, self.task
        clock = time.time()
        trainer = self.quiet(scheduled_sampling_trainer(
            self.generator(seed), self.config(seed, "ss"), task.train, num_updates=total_updates,
            sampling_probability=p["ss_probability"], schedule="linear"))
        trainer.train()
        self.record("ss", seed, trainer.model, final_eval, clock, [], trainer.state.global_step,
                    extra={"sampling_probability": f"linear 0 -> {p['ss_probability']} over the updates",
                           "exact_sequential": True})

    def run_pg_bleu(self, seed, pretrained, final_eval, curve_eval, start_oracle, start_test, mle_updates):
        p, task = self.p, self.task
        a_iters, g_steps, every = p["adversarial_iterations"], p["g_steps"], p["eval_every"]
        clock = time.time()
        trainer = self.quiet(PGBleuTrainer(
            copy.deepcopy(pretrained), self.config(seed, "pg_bleu", adversarial_iterations=a_iters),
            train_dataset=task.train_dataset(), evaluator=curve_eval, callbacks=[EvaluateEvery(every)]))
        trainer.train()
        curve, curve_test = curve_from_history(trainer.state.log_history)
        self.record("pg_bleu", seed, trainer.model, final_eval, clock, [[0, start_oracle]] + curve,
                    mle_updates + a_iters * g_steps, [[0, start_test]] + curve_test,
                    extra={"reward": "sentence BLEU-4 vs the training set (nltk smoothing method1)"})

    def run_seqgan(self, seed, pretrained, final_eval, curve_eval, start_oracle, start_test, mle_updates):
        p, task = self.p, self.task
        a_iters, g_steps, every = p["adversarial_iterations"], p["g_steps"], p["eval_every"]
        clock = time.time()
        fields = dict(discriminator_pretrain_rounds=p["d_pretrain_rounds"], adversarial_iterations=a_iters,
                      d_steps=p["d_steps"])
        fields.update(self.seqgan_overrides)
        args = self.config(seed, "seqgan", **fields)
        rounds = args.discriminator_pretrain_rounds
        trainer = self.quiet(SeqGANTrainer(
            model=copy.deepcopy(pretrained), discriminator=self.discriminator(seed), args=args,
            train_dataset=task.train_dataset(), evaluator=curve_eval, callbacks=[EvaluateEvery(every, rounds)]))
        trainer.train()
        curve, curve_test = curve_from_history(trainer.state.log_history, rounds)
        d_logs = [e for e in trainer.state.log_history if "discriminator/accuracy_fake" in e]
        extra = {"overrides": self.seqgan_overrides} if self.seqgan_overrides else {}
        if d_logs:
            extra["discriminator_last_log"] = {k: round(v, 4) for k, v in d_logs[-1].items()
                                               if k.startswith(("discriminator/", "adversarial/"))}
        self.record("seqgan", seed, trainer.model, final_eval, clock, [[0, start_oracle]] + curve,
                    mle_updates + a_iters * g_steps, [[0, start_test]] + curve_test, extra=extra)

    def run_sweeps(self, seed):
        p = self.p
        if seed in self.sweep_seeds:
            clock = time.time()
            for method in [m for m in ("mle", "ss", "pg_bleu", "seqgan") if (m, seed) in self.final_models]:
                model = self.final_models[(method, seed)]
                sweep = temperature_sweep(model, p["sweep_temperatures"], task=self.sweep_task,
                                          num_samples=p["sweep_samples"], seed=3000 + seed)
                self.sweeps = [s for s in self.sweeps if (s["method"], s["seed"]) != (method, seed)]
                sweep["sampling_seed"] = sweep.pop("seed")
                self.sweeps.append({"method": method, "seed": seed, **sweep})
            self.log(f"seed {seed}: temperature sweep in {time.time() - clock:.0f} s")
            self.write()

    def record(self, method, seed, model, evaluator, clock, curve, updates, curve_test=None, extra=None):
        metrics = evaluator(model)
        run = {"method": method, "seed": seed, "nll_oracle": metrics["nll_oracle"], "nll_test": metrics["nll_test"],
               "curve": curve, "curve_nll_test": curve_test or [], "generator_updates": updates,
               "wall_time_s": round(time.time() - clock, 1), **(extra or {})}
        if run["method"] != "random":  # the process's CPU time so far: on a busy machine, closer to idle wall time
            run["process_cpu_time_s_so_far"] = round(time.process_time(), 1)
        self.runs = [r for r in self.runs if (r["method"], r["seed"]) != (method, seed)] + [run]
        self.final_models[(method, seed)] = copy.deepcopy(model).cpu().eval()
        self.save_model(model, f"{method}-seed{seed}")
        self.log(f"seed {seed}: {method:8s} NLL_oracle {run['nll_oracle']:.3f}  NLL_test {run['nll_test']:.3f}  "
                 f"({run['wall_time_s']:.0f} s)")
        self.write()

    def save_model(self, model, name: str) -> None:
        if self.args.save_models:
            model.save_pretrained(os.path.join(self.args.save_models, name))

    def log(self, message: str) -> None:
        print(f"[{time.time() - self.started:7.0f} s] {message}", flush=True)

    # ---- whole benchmark ----------------------------------------------------------------------------

    def run(self) -> dict:
        args, p = self.args, self.p
        torch.set_num_threads(args.threads)
        os.makedirs(args.output_dir, exist_ok=True)
        self.json_path = os.path.join(args.output_dir, f"{args.stem}.json")
        if args.merge and os.path.exists(self.json_path):
            with open(self.json_path) as handle:
                previous = json.load(handle)
            if previous.get("protocol") != self.protocol_name:
                raise SystemExit(f"--merge: {self.json_path} holds protocol {previous.get('protocol')!r}, "
                                 f"not {self.protocol_name!r}.")
            redone = {(method, seed) for method in args.methods for seed in args.seeds}
            self.runs = [r for r in previous["runs"] if (r["method"], r["seed"]) not in redone]
            self.sweeps = [s for s in previous.get("sweeps", []) if (s["method"], s["seed"]) not in redone]
            self.previous_wall_time = previous.get("wall_time_s", 0)
            self.previous_commands = previous.get("commands") or [previous["command"]]
            self.previous_pretrain_curves = previous.get("mle_pretrain_curves", {})
        self.final_models = {}
        self.sweep_seeds = set(args.sweep_seeds if args.sweep_seeds is not None else args.seeds[:1])
        clock = time.time()
        self.task = OracleTask.create(
            seed=args.oracle_seed, num_train=p["num_train"], num_test=p["num_test"], oracle_params=args.oracle_params,
            sequence_length=p["sequence_length"],
            **({} if args.oracle_params else dict(vocab_size=p["vocab_size"], embedding_dim=p["embedding_dim"],
                                                   hidden_dim=p["hidden_dim"])),
        )
        if self.task.oracle.config.vocab_size != p["vocab_size"]:
            p["vocab_size"] = self.task.oracle.config.vocab_size
        self.curve_task = OracleTask(self.task.oracle, self.task.train, self.task.test[: p["curve_test"]])
        self.sweep_task = OracleTask(self.task.oracle, self.task.train, self.task.test[: p["sweep_test"]])
        from seqgan_hf.oracle import sequence_nll

        self.oracle_nll_test = sequence_nll(self.task.oracle, self.task.test)
        self.log(f"oracle task ready in {time.time() - clock:.0f} s; oracle's own NLL of the test set "
                 f"(its entropy rate) {self.oracle_nll_test:.3f}")
        for seed in args.seeds:
            self.run_seed(seed)
        self.write(final=True)
        self.print_table()
        return self.result()

    @property
    def protocol_name(self) -> str:
        return self.protocol + ("-smoke" if self.args.smoke else "")

    def summary(self) -> dict:
        return summarize(self.runs, METHODS, ("nll_oracle", "nll_test"))

    def result(self) -> dict:
        oracle = (f"paper-layout parameters from {os.path.basename(self.args.oracle_params)}" if self.args.oracle_params
                  else f"LSTM with N(0,1) parameters, oracle seed {self.args.oracle_seed} (seqgan_hf.oracle.build_oracle)")
        return {
            "protocol": self.protocol_name,
            "oracle": oracle,
            "oracle_nll_test": self.oracle_nll_test,
            "settings": {**self.p, "discriminator_macs_per_sequence": discriminator_macs(self.p),
                         "paper_discriminator_macs_per_sequence": discriminator_macs(
                             {**self.p, "d_filter_sizes": PAPER_FILTER_SIZES, "d_num_filters": PAPER_NUM_FILTERS,
                              "d_embedding_dim": 64}),
                         "seqgan_overrides": self.seqgan_overrides},
            "command": "python benchmarks/reproduce_oracle.py " + " ".join(sys.argv[1:]),
            # With --merge: every command whose runs the file holds, oldest first.
            "commands": getattr(self, "previous_commands", []) + [
                "python benchmarks/reproduce_oracle.py " + " ".join(sys.argv[1:])],
            "machine": {"platform": platform.platform(), "processor": platform.processor(),
                        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                        "torch": torch.__version__, "load_average_at_start": self.load_average,
                        "device": "cpu"},
            "wall_time_s": round(time.time() - self.started + getattr(self, "previous_wall_time", 0), 1),
            "process_cpu_time_s": round(time.process_time(), 1),
            "paper_table1_nll_oracle": PAPER_TABLE1,
            "summary": self.summary(),
            "runs": sorted(self.runs, key=lambda r: (r["seed"], METHODS.index(r["method"]))),
            "sweeps": self.sweeps,
            "mle_pretrain_curves": {**getattr(self, "previous_pretrain_curves", {}),
                                    **{str(seed): curve for seed, curve in self.pretrain_curves.items()}},
        }

    def write(self, final: bool = False) -> None:
        result = self.result()
        temporary = self.json_path + ".tmp"
        with open(temporary, "w") as handle:
            json.dump(result, handle, indent=1)
        os.replace(temporary, self.json_path)
        if final or self.args.plot_every_run:
            draw(result, self.args.output_dir, self.args.stem)

    def print_table(self) -> None:
        summary = self.summary()
        print("\n| method | NLL_oracle (mean ± std) | NLL_test (mean ± std) | seeds | paper NLL_oracle |")
        print("| --- | --- | --- | --- | --- |")
        for method, row in summary.items():
            print(f"| {method} | {row['nll_oracle_mean']:.3f} ± {row['nll_oracle_std']:.3f} | "
                  f"{row['nll_test_mean']:.3f} ± {row['nll_test_std']:.3f} | {len(row['seeds'])} | "
                  f"{PAPER_TABLE1.get(method, float('nan')):.3f} |")
        print(f"\noracle's own NLL of its test set: {self.oracle_nll_test:.3f}; "
              f"wall time {time.time() - self.started:.0f} s; results in {self.json_path}")


def summarize(runs: list[dict], methods, keys) -> dict:
    """Per method (in `methods` order, those with runs): its seeds, and mean and sample std over seeds of `keys`."""
    table = {}
    for method in methods:
        chosen = [r for r in runs if r["method"] == method]
        if chosen:
            row = {"seeds": sorted(r["seed"] for r in chosen)}
            for key in keys:
                values = [r[key] for r in chosen]
                row[f"{key}_mean"] = statistics.fmean(values)
                row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            table[method] = row
    return table


def _mean_curves(result: dict, method: str, key: str):
    curves = [r[key] for r in result["runs"] if r["method"] == method and r.get(key)]
    if not curves:
        return None
    iterations = sorted(set.intersection(*[{point[0] for point in c} for c in curves]))
    values = [[dict((point[0], point[1]) for point in c)[i] for c in curves] for i in iterations]
    mean = [statistics.fmean(v) for v in values]
    std = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
    return iterations, mean, std, len(curves)


def plot_curves(result: dict, path: str) -> None:
    """Left: NLL_oracle vs adversarial iteration per method (mean over seeds, band = +- std), MLE's final value
    as a flat line (the paper's Figure 2), the y-range set by MLE and SeqGAN (a collapsing PG-BLEU leaves it
    downwards). Right: NLL_test on the same iterations (the diversity the NLL_oracle gain costs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    styles = {"seqgan": ("SeqGAN", "tab:red"), "pg_bleu": ("PG-BLEU", "tab:green"),
              "mle": ("MLE (continued, same updates)", "tab:blue")}
    focus = []
    for axis, key in ((left, "curve"), (right, "curve_nll_test")):
        for method, (label, color) in styles.items():
            curves = _mean_curves(result, method, key)
            if curves is None:
                continue
            iterations, mean, std, count = curves
            if axis is left and method != "pg_bleu":
                focus += [m - s for m, s in zip(mean, std)] + [m + s for m, s in zip(mean, std)]
            if axis is left and method == "pg_bleu" and focus and min(mean) < min(focus) - 0.1:
                label += f" (down to {min(mean):.2f}: off the axes)"
            axis.plot(iterations, mean, color=color, marker=".", label=f"{label} (n={count})",
                      linewidth=1 if method == "mle" else 2, alpha=0.6 if method == "mle" else 1.0)
            if count > 1:
                axis.fill_between(iterations, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                                  color=color, alpha=0.15)
    mle = result["summary"].get("mle")
    if mle:
        left.axhline(mle["nll_oracle_mean"], color="tab:blue", linestyle="--",
                     label=f"MLE final ({mle['nll_oracle_mean']:.3f}, {result['settings']['final_samples']} samples)")
        focus.append(mle["nll_oracle_mean"])
    ss = result["summary"].get("ss")
    if ss:
        left.axhline(ss["nll_oracle_mean"], color="tab:purple", linestyle=":",
                     label=f"scheduled sampling final ({ss['nll_oracle_mean']:.3f}, same updates as MLE)")
        focus.append(ss["nll_oracle_mean"])
    if focus:
        span = max(focus) - min(focus)
        left.set_ylim(min(focus) - 0.15 * span - 0.02, max(focus) + 0.15 * span + 0.02)
    settings = result["settings"]
    for axis, ylabel in ((left, "NLL_oracle (lower = better samples)"),
                         (right, "NLL_test (lower = better coverage of held-out data)")):
        axis.set_xlabel("adversarial iteration (generator updates after MLE pretraining)")
        axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    figure.suptitle(f"Oracle task, {result['protocol']} protocol (curve points: {settings['curve_samples']} samples, "
                    f"{settings['curve_test']} test sequences; iteration 0 = end of MLE pretraining)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 0 1 2 (smoke: 0)")
    parser.add_argument("--oracle-seed", type=int, default=0)
    parser.add_argument("--oracle-params", default=None, help="oracle parameters, .npz in the paper's layout")
    parser.add_argument("--save-models", default=None, metavar="DIR",
                        help="save every trained generator to DIR/<method>-seed<seed> (from_pretrained loads it)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, every code path: under a minute")
    parser.add_argument("--output-dir", default=None, help="default: docs/results (smoke: outputs/reproduce_smoke)")
    parser.add_argument("--stem", default=None, help="file name stem (default: oracle, or oracle_paper)")
    parser.add_argument("--sweep-seeds", type=int, nargs="*", default=None, help="default: the first seed")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--merge", action="store_true", help="keep the other seeds' runs of an existing JSON")
    parser.add_argument("--adversarial-iterations", type=int, default=None, help="override the protocol's")
    parser.add_argument("--seqgan-override", action="append", default=[], metavar="FIELD=VALUE",
                        help="SeqGANConfig field for the seqgan run only (e.g. reward_baseline=batch_mean)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="which methods to run (MLE pretraining always runs, or is loaded with --pretrained)")
    parser.add_argument("--pretrained", default=None, metavar="DIR",
                        help="load DIR/mle_pretrain-seed<seed> (a previous --save-models DIR) instead of pretraining")
    parser.add_argument("--replot", action="store_true",
                        help="only redraw the PNGs from the existing <output-dir>/<stem>.json (no training)")
    parser.add_argument("--plot-every-run", action="store_true", help="redraw the PNGs after every run")
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = [0] if args.smoke else [0, 1, 2]
    if args.output_dir is None:
        args.output_dir = os.path.join(ROOT, "outputs", "reproduce_smoke") if args.smoke else os.path.join(
            ROOT, "docs", "results")
    if args.stem is None:
        args.stem = "oracle" if args.protocol == "cpu" else f"oracle_{args.protocol}"
    for item in args.seqgan_override:
        if "=" not in item:
            parser.error(f"--seqgan-override {item!r}: expected FIELD=VALUE")
    return args


def draw(result: dict, output_dir: str, stem: str) -> None:
    """`<stem>_curve.png` (learning curves) and, when there are sweeps, `<stem>_sweep.png` (first swept seed)."""
    plot_curves(result, os.path.join(output_dir, f"{stem}_curve.png"))
    if result["sweeps"]:
        seed = min(s["seed"] for s in result["sweeps"])
        labels = {"mle": "MLE", "ss": "Scheduled sampling", "pg_bleu": "PG-BLEU", "seqgan": "SeqGAN"}
        sweeps = {labels[s["method"]]: s for s in result["sweeps"] if s["seed"] == seed}
        plot_sweeps(sweeps, os.path.join(output_dir, f"{stem}_sweep.png"),
                    title=f"Temperature sweep, oracle task ({result['protocol']} protocol, seed {seed})")
        if "PG-BLEU" in sweeps and len(sweeps) > 2:  # a collapsing PG-BLEU squashes the others: zoom on them
            others = {label: sweep for label, sweep in sweeps.items() if label != "PG-BLEU"}
            plot_sweeps(others, os.path.join(output_dir, f"{stem}_sweep_zoom.png"),
                        title=f"Temperature sweep without PG-BLEU ({result['protocol']} protocol, seed {seed})")


def replot(args: argparse.Namespace) -> dict:
    """Redraw the PNGs from `<output-dir>/<stem>.json` without training."""
    with open(os.path.join(args.output_dir, f"{args.stem}.json")) as handle:
        result = json.load(handle)
    draw(result, args.output_dir, args.stem)
    return result


def _coerce_overrides(overrides: dict) -> dict:
    """Turn FIELD=VALUE strings into the field's type (int, float, bool, or str)."""
    result = {}
    for key, value in overrides.items():
        for cast in (int, float):
            try:
                result[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            result[key] = {"true": True, "false": False}.get(value.lower(), value)
    return result


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.replot:
        return replot(args)
    benchmark = Benchmark(args)
    benchmark.seqgan_overrides = _coerce_overrides(benchmark.seqgan_overrides)
    result = benchmark.run()
    if not math.isfinite(result["wall_time_s"]):
        raise SystemExit(1)
    return result


if __name__ == "__main__":
    main()
