"""Import hygiene: light submodules stay light, `import seqgan_hf` still registers the models, and the package
has no import cycles (imports inside functions count, `if TYPE_CHECKING:` blocks do not)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import seqgan_hf

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "seqgan_hf"


def _fresh_python(code: str) -> str:
    """Run `code` in a new interpreter (nothing imported yet) from the repository root; return its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def test_metrics_import_loads_neither_accelerate_nor_the_trainer() -> None:
    loaded = json.loads(_fresh_python("""
        import json, sys
        import seqgan_hf.metrics
        print(json.dumps([name for name in ("accelerate", "transformers.trainer", "seqgan_hf.trainer")
                          if name in sys.modules]))
    """))
    assert loaded == []


def test_import_seqgan_hf_registers_the_models_with_the_auto_classes(tmp_path) -> None:
    from seqgan_hf import CNNDiscriminatorConfig, CNNForSequenceClassification, LSTMConfig, LSTMForCausalLM

    LSTMForCausalLM(LSTMConfig(vocab_size=11, embedding_dim=4, hidden_dim=4)).save_pretrained(tmp_path / "lstm")
    CNNForSequenceClassification(
        CNNDiscriminatorConfig(vocab_size=11, embedding_dim=4, filter_sizes=[1, 2], num_filters=[2, 2])
    ).save_pretrained(tmp_path / "cnn")
    names = json.loads(_fresh_python(f"""
        import json
        import seqgan_hf
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

        print(json.dumps([
            type(AutoModelForCausalLM.from_pretrained({str(tmp_path / "lstm")!r})).__name__,
            type(AutoModelForSequenceClassification.from_pretrained({str(tmp_path / "cnn")!r})).__name__,
            type(AutoConfig.for_model("seqgan_lstm", vocab_size=7)).__name__,
        ]))
    """))
    assert names == ["LSTMForCausalLM", "CNNForSequenceClassification", "LSTMConfig"]


def test_public_names_resolve_lazily_and_match_the_static_imports() -> None:
    for name in seqgan_hf.__all__:
        assert getattr(seqgan_hf, name) is not None
    assert set(seqgan_hf.__all__) <= set(dir(seqgan_hf))
    assert seqgan_hf.oracle.__name__ == "seqgan_hf.oracle"  # submodules as attributes, as before
    try:
        seqgan_hf.no_such_name  # noqa: B018
    except AttributeError:
        pass
    else:
        raise AssertionError("seqgan_hf.no_such_name should raise AttributeError")
    # The TYPE_CHECKING imports (what static tools see) name exactly the lazily imported names.
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If) and _is_type_checking(node.test))
    static = {alias.asname or alias.name for node in block.body for alias in node.names}
    assert static == set(seqgan_hf.__all__) - {"__version__"}


# ---- import cycles -------------------------------------------------------------------------------------------


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every `.py` file of `package` (a package is named by its `__init__`)."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


class _ImportCollector(ast.NodeVisitor):
    """The package modules one module imports, anywhere in its body except under `if TYPE_CHECKING:`."""

    def __init__(self, module: str, is_package: bool, known: set[str]):
        self.module, self.known, self.found = module, known, set()
        self.package = module if is_package else module.rpartition(".")[0]

    def _add(self, dotted: str) -> None:
        # `import a.b.c` / `from a.b import c`: the deepest package module the name reaches.
        while dotted and dotted not in self.known:
            dotted = dotted.rpartition(".")[0]
        if dotted and dotted != self.module:
            self.found.add(dotted)

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for statement in node.orelse:
                self.visit(statement)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            anchor = self.package
            for _ in range(node.level - 1):
                anchor = anchor.rpartition(".")[0]
            base = f"{anchor}.{node.module}" if node.module else anchor
        for alias in node.names:
            self._add(f"{base}.{alias.name}")


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    modules = _modules(package)
    graph = {}
    for name, path in modules.items():
        collector = _ImportCollector(name, path.name == "__init__.py", set(modules))
        collector.visit(ast.parse(path.read_text(), filename=str(path)))
        graph[name] = collector.found
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path `[a, b, ..., a]`, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for root in sorted(graph):
        if root in state:
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append(iter(sorted(graph[child])))
    return None


def test_the_cycle_finder_sees_function_level_imports_and_skips_type_checking(tmp_path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import f\n")
    (package / "b.py").write_text("def f():\n    from . import c\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import f\n")
    assert import_graph(package) == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": set()}
    assert find_cycle(import_graph(package)) is None
    (package / "c.py").write_text("def g():\n    import pkg.a\n")
    assert find_cycle(import_graph(package)) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]


def test_seqgan_hf_has_no_import_cycles() -> None:
    graph = import_graph(PACKAGE)
    assert {"seqgan_hf.oracle", "seqgan_hf.sweep", "seqgan_hf.metrics"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
