"""Seeing the rewards: sampled completions, token by token, with their Monte Carlo rewards and D's P(real).

With `SeqGANConfig.log_completions`, every g-step hands this module its sampled sequences, their per-token
Monte Carlo rewards Q [B, T] (`SeqGAN.generator_step`, before any baseline) and the EOS mask. The first
`num_completions_to_log` rows of this process are kept (tokens after the first EOS dropped), with the
discriminator's P(real) of each complete sequence, computed for those rows alone through the trainer's
discriminator reward source (so with a mix of `reward_funcs` it is still D's score, not the mixed reward).

At each logging step (`logging_steps` of the adversarial phase; also the final log of training), the main
process writes what the unit's last g-step captured:

* `output_dir/completions/step_<global_step>.html`: a self-contained page (inline CSS, no script, no network),
  one row per completion: D's P(real), then the tokens, each shaded by its reward on the fixed scale of
  `reward_colour` (white at 0 -> green at 1; rewards outside [0, 1] are clamped), the value in a `title`
  tooltip and a `data-reward` attribute, and a legend;
* `output_dir/completions/step_<global_step>.json`: the same data (the page's source, for scripts and tests);
* `output_dir/completions/index.html`: every step page of this run, newest first (rebuilt from the JSON
  files, so a resumed run appends to it; pages of another run, left by `overwrite_output_dir`, are not listed);
* a table (step, prompt, completion, P(real) from D, per-token rewards) to the trackers enabled by `report_to`:
  TensorBoard (markdown text through `TensorBoardCallback`'s writer), wandb and trackio (their `Table`).

Every completion has its `prompt` (text and ids; empty when sequences start from the start token alone), shown
beside it; P(real) is D's score of the (prompt, completion) pair.
"""

from __future__ import annotations

import glob
import html
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field

import torch

from .prompts import Prompts

logger = logging.getLogger("seqgan_hf.trainer")

#: The colour scale of the pages: reward 0 -> `LOW_COLOUR` (white), reward 1 -> `HIGH_COLOUR` (green), linear in
#: each RGB channel, rounded to the nearest integer.
LOW_COLOUR = (255, 255, 255)
HIGH_COLOUR = (22, 163, 74)
FORMAT_VERSION = 1
TABLE_COLUMNS = ["step", "prompt", "completion", "P(real) from D", "per-token rewards"]
_STEP_FILE = re.compile(r"step_(\d+)\.json$")


def reward_colour(reward: float) -> str:
    """The background colour `#rrggbb` of a token with this Monte Carlo reward (clamped to [0, 1])."""
    weight = min(1.0, max(0.0, float(reward)))
    channels = (round(low + weight * (high - low)) for low, high in zip(LOW_COLOUR, HIGH_COLOUR))
    return "#" + "".join(f"{channel:02x}" for channel in channels)


def text_colour(reward: float) -> str:
    """Dark text on light backgrounds, white text on the dark greens (reward above 0.6)."""
    return "#ffffff" if float(reward) > 0.6 else "#111111"


@dataclass
class Completion:
    """One logged sequence: its tokens (one string each), their ids and Monte Carlo rewards, D's P(real)."""

    tokens: list[str]
    token_ids: list[int]
    rewards: list[float]
    completion: str
    real_probability: float | None = None
    prompt: str = ""  # empty for sequences sampled from the start token alone
    prompt_ids: list[int] = field(default_factory=list)


@dataclass
class CompletionLog:
    """The completions of one logging step."""

    step: int
    completions: list[Completion]
    run_id: str | None = None
    format: int = FORMAT_VERSION

    def table_rows(self) -> list[list]:
        """Rows in `TABLE_COLUMNS` order; the rewards as text, one value per token in order."""
        return [[self.step, c.prompt, c.completion, c.real_probability, " ".join(f"{r:.3f}" for r in c.rewards)]
                for c in self.completions]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> CompletionLog:
        data = json.loads(text)
        data["completions"] = [Completion(**c) for c in data["completions"]]
        return cls(**data)


class CompletionLogger:
    """Captures completions at every g-step and writes them out at logging steps (see the module docstring).

    Args:
        output_dir: the run's folder; pages go to `output_dir/completions/`.
        num_completions: rows kept per g-step (`num_completions_to_log`).
        tokenizer: the generator's tokenizer (`processing_class`); None shows token ids.
        discriminator_reward: the trainer's `DiscriminatorReward` (None: no discriminator, no P(real)).
    """

    def __init__(self, output_dir: str, num_completions: int, tokenizer=None, discriminator_reward=None):
        self.folder = os.path.join(output_dir, "completions")
        self.num_completions = num_completions
        self.tokenizer = tokenizer
        self.discriminator_reward = discriminator_reward
        self._pending: tuple | None = None
        self._warned: set[str] = set()

    # ---- capture (every process, every g-step) ------------------------------------------------------------

    @torch.no_grad()
    def capture(self, sequences: torch.LongTensor, rewards: torch.Tensor, keep: torch.Tensor,
                prompts: Prompts | None = None) -> None:
        """Keep the first rows of a g-step: token ids [B, T], Monte Carlo rewards [B, T], EOS mask [B, T], and
        the prompts they complete (None: no prompts)."""
        rows = sequences[: self.num_completions]
        row_prompts = prompts.select(slice(0, rows.shape[0])) if prompts is not None else None
        real = None
        if self.discriminator_reward is not None:  # every process calls it (a collective under FSDP2)
            real = self.discriminator_reward(rows, prompts=row_prompts).float().cpu()
        prompt_ids = row_prompts.token_lists() if row_prompts is not None else [[] for _ in range(rows.shape[0])]
        self._pending = (rows.cpu(), rewards[: rows.shape[0]].detach().float().cpu(),
                         keep[: rows.shape[0]].cpu(), real, prompt_ids)

    def completion_log(self, step: int, run_id: str | None = None) -> CompletionLog | None:
        """What the last capture holds, as a `CompletionLog` (None if nothing was captured since the last one)."""
        if self._pending is None:
            return None
        sequences, rewards, keep, real, prompt_ids = self._pending
        self._pending = None
        completions = []
        for row in range(sequences.shape[0]):
            ids = sequences[row][keep[row]].tolist()
            completions.append(Completion(
                tokens=[self._token_text(token) for token in ids], token_ids=ids,
                rewards=[float(value) for value in rewards[row][keep[row]]], completion=self._text(ids),
                real_probability=float(real[row]) if real is not None else None,
                prompt=self._prompt_text(prompt_ids[row]), prompt_ids=prompt_ids[row],
            ))
        return CompletionLog(step=step, completions=completions, run_id=run_id)

    def _token_text(self, token: int) -> str:
        if self.tokenizer is None:
            return str(token)
        return self.tokenizer.decode([token])

    def _prompt_text(self, ids: list[int]) -> str:
        if self.tokenizer is None:
            return " ".join(str(token) for token in ids)
        return self.tokenizer.decode(ids)

    def _text(self, ids: list[int]) -> str:
        if self.tokenizer is None:
            return " ".join(str(token) for token in ids)
        if ids and ids[-1] == self.tokenizer.eos_token_id:  # the closing EOS; every sampled token else stays
            ids = ids[:-1]
        return self.tokenizer.decode(ids)

    # ---- output (main process, logging steps) -------------------------------------------------------------

    def write(self, step: int, callbacks, is_main: bool, run_id: str | None = None) -> CompletionLog | None:
        """At a logging step: the captured completions to the pages and the trackers (main process only)."""
        log = self.completion_log(step, run_id)
        if log is None or not is_main:
            return log
        os.makedirs(self.folder, exist_ok=True)
        _write_atomic(os.path.join(self.folder, f"step_{step}.json"), log.to_json())
        _write_atomic(os.path.join(self.folder, f"step_{step}.html"), render_page(log))
        write_index(self.folder, run_id)
        self._send_to_trackers(log, callbacks)
        return log

    def _send_to_trackers(self, log: CompletionLog, callbacks) -> None:
        for callback in callbacks:
            name = type(callback).__name__
            try:
                if name == "TensorBoardCallback" and getattr(callback, "tb_writer", None) is not None:
                    callback.tb_writer.add_text("completions", markdown_table(log), log.step)
                    callback.tb_writer.flush()
                elif name == "WandbCallback" and getattr(callback, "_initialized", False):
                    wandb = callback._wandb
                    if getattr(wandb, "run", None) is not None:
                        table = wandb.Table(columns=TABLE_COLUMNS, data=log.table_rows())
                        wandb.log({"completions": table, "train/global_step": log.step})
                elif name == "TrackioCallback" and getattr(callback, "_initialized", False):
                    trackio = callback._trackio
                    if getattr(trackio, "Table", None) is None:
                        self._warn_once(name, "this trackio version has no Table; completions are not sent to it")
                        continue
                    import pandas

                    table = trackio.Table(dataframe=pandas.DataFrame(log.table_rows(), columns=TABLE_COLUMNS))
                    trackio.log({"completions": table, "train/global_step": log.step})
            except Exception as error:  # a tracker failing must not stop training; the pages are written
                self._warn_once(name, f"could not send the completions table ({type(error).__name__}: {error})")

    def _warn_once(self, tracker: str, message: str) -> None:
        if tracker not in self._warned:
            self._warned.add(tracker)
            logger.warning("log_completions: %s: %s.", tracker, message)


# ---- rendering -----------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #111; }
table.completions { border-collapse: collapse; }
table.completions td, table.completions th { border-bottom: 1px solid #ddd; padding: 4px 8px; vertical-align: top;
  text-align: left; }
td.preal { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.prompt { color: #555; }
span.tok { display: inline-block; margin: 1px; padding: 1px 3px; border: 1px solid #ccc; border-radius: 3px;
  white-space: pre; font-family: ui-monospace, monospace; }
.legend span.tok { min-width: 2.5em; text-align: center; }
.note { color: #555; font-size: 90%; }
"""


def _token_span(token: str, token_id: int, reward: float) -> str:
    shown = token if token else f"<{token_id}>"  # a token that decodes to nothing: its id
    return (f'<span class="tok" data-token-id="{token_id}" data-reward="{reward:.6f}" title="reward {reward:.4f}" '
            f'style="background-color:{reward_colour(reward)};color:{text_colour(reward)}">'
            f"{html.escape(shown, quote=True)}</span>")


def render_page(log: CompletionLog) -> str:
    """One step's page: self-contained HTML (inline CSS, no script), every token escaped."""
    legend = "".join(
        f'<span class="tok" style="background-color:{reward_colour(v)};color:{text_colour(v)}">{v:.2f}</span>'
        for v in (0.0, 0.25, 0.5, 0.75, 1.0))
    rows = []
    for index, completion in enumerate(log.completions):
        real = completion.real_probability
        real_cell = (f'<td class="preal" data-p-real="{real:.6f}">{real:.3f}</td>' if real is not None
                     else '<td class="preal">&mdash;</td>')
        tokens = "".join(_token_span(token, token_id, reward) for token, token_id, reward
                         in zip(completion.tokens, completion.token_ids, completion.rewards))
        rows.append(f'<tr class="completion" data-row="{index}"><td>{index}</td>'
                    f'<td class="prompt">{html.escape(completion.prompt)}</td>{real_cell}'
                    f'<td class="tokens">{tokens}</td></tr>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>SeqGAN completions, step {log.step}</title>
<style>{_CSS}</style></head>
<body>
<h1>Completions at step {log.step}</h1>
<p><a href="index.html">All steps</a></p>
<p class="legend">Monte Carlo reward Q of each token (white = 0, green = 1): {legend}</p>
<p class="note">Each token's reward is the mean, over the rollouts that complete the sequence from it, of the reward
of the complete sequence; the last token's is the reward of the sequence itself. P(real) from D is the
discriminator's probability that the whole sequence (with its prompt, if any) is real. Hover over a token for its reward.</p>
<table class="completions">
<thead><tr><th>#</th><th>prompt</th><th>P(real) from D</th><th>completion (tokens shaded by reward)</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
</body></html>
"""


def markdown_table(log: CompletionLog) -> str:
    """The tracker table as markdown (TensorBoard's text plugin renders it)."""
    def cell(value) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4f}"
        return str(value).replace("|", "\\|").replace("\n", " ") or " "

    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in log.table_rows()]
    return "\n".join(lines)


def read_logs(folder: str, run_id: str | None = None) -> list[CompletionLog]:
    """The completion logs in `folder` (of `run_id` alone when given), newest step first."""
    logs = []
    for path in glob.glob(os.path.join(folder, "step_*.json")):
        if _STEP_FILE.search(path) is None:
            continue
        try:
            with open(path) as handle:
                log = CompletionLog.from_json(handle.read())
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if run_id is None or log.run_id == run_id:
            logs.append(log)
    return sorted(logs, key=lambda log: log.step, reverse=True)


def write_index(folder: str, run_id: str | None = None) -> str:
    """`folder/index.html`: a link to every step page of the run, newest first, with its mean P(real) and reward."""
    items = []
    for log in read_logs(folder, run_id):
        reals = [c.real_probability for c in log.completions if c.real_probability is not None]
        rewards = [r for c in log.completions for r in c.rewards]
        summary = []
        if reals:
            summary.append(f"mean P(real) {sum(reals) / len(reals):.3f}")
        if rewards:
            summary.append(f"mean token reward {sum(rewards) / len(rewards):.3f}")
        items.append(f'<li><a href="step_{log.step}.html">step {log.step}</a> '
                     f'<span class="note">({len(log.completions)} completions; {", ".join(summary)})</span></li>')
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>SeqGAN completions</title><style>{_CSS}</style></head>
<body>
<h1>Completions by step</h1>
<p class="note">Newest first. Each page shows sampled sequences with every token shaded by its Monte Carlo reward.</p>
<ul class="steps">
{chr(10).join(items)}
</ul>
</body></html>
"""
    path = os.path.join(folder, "index.html")
    _write_atomic(path, page)
    return path


def _write_atomic(path: str, text: str) -> None:
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


__all__ = ["Completion", "CompletionLog", "CompletionLogger", "markdown_table", "read_logs", "render_page",
           "reward_colour", "write_index"]
