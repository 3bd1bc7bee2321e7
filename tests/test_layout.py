"""The package's layout: no import circles, and no import from a lower layer to a higher one.

Every import statement of every module is read from the source (`ast`), including the
imports inside functions, which are the ones that hid the flat layout's circles.
"""

import ast
import pathlib
import textwrap

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "textrnn"

# The layers, lowest first. A module may import modules of its own package and of
# packages in lower layers; shared packages are ordered among themselves too, so a
# lower shared package never imports a higher one. Tasks never import each other.
SHARED = ("text", "data", "layers", "decoding", "metrics", "training", "export")
TASKS = ("charlm", "sentiment", "translation")
TOP = ("cli", "quickstart", "native_logs", "diagnostics", "serving")


def module_name(path: pathlib.Path, package: pathlib.Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: pathlib.Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, from every import statement."""
    files = {module_name(p, package): p for p in package.rglob("*.py")}
    graph = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    here = here[: len(here) - node.level + 1]
                    base = ".".join(here + ([base] if base else []))
                # `from a import b` imports module `a.b` when there is one, else `a`.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer_of(module: str) -> tuple[int, str]:
    """(rank, room) of a module: its layer and the package it belongs to."""
    parts = module.split(".")
    if len(parts) == 1:
        return len(SHARED) + 1, "textrnn"  # the package face stands on top
    room = parts[1]
    if room in SHARED:
        return SHARED.index(room), room
    if room in TASKS:
        return len(SHARED), room
    if room in TOP:
        return len(SHARED) + 1, room
    raise AssertionError(f"{module} is in no layer: add {room!r} to SHARED, TASKS or TOP")


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in sorted(graph.items()):
        rank, room = layer_of(module)
        for target in sorted(targets):
            target_rank, target_room = layer_of(target)
            if target_room == room:
                continue
            if target_rank >= rank and rank <= len(SHARED):
                what = (
                    "another task" if room in TASKS and target_room in TASKS else "a higher layer"
                )
                bad.append(f"{module} imports {target} ({what})")
    return bad


def test_the_package_has_no_import_circles():
    assert circles(import_graph(PACKAGE)) == []


def test_no_module_imports_a_higher_layer_or_another_task():
    assert layer_violations(import_graph(PACKAGE)) == []


def test_every_module_belongs_to_a_layer_and_the_top_level_stays_small():
    graph = import_graph(PACKAGE)
    for module in graph:
        layer_of(module)
    top_level = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert top_level == ["cli.py", "native_logs.py", "quickstart.py"]


def test_each_task_package_has_the_same_files():
    expected = {
        "__init__.py",
        "config.py",
        "data.py",
        "evaluate.py",
        "export.py",
        "model.py",
        "train.py",
    }
    for task in TASKS:
        files = {p.name for p in (PACKAGE / task).glob("*.py")}
        assert expected <= files, f"{task}/ lacks {sorted(expected - files)}"


def _write_package(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for relative, text in files.items():
        path = root / "textrnn" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root / "textrnn"


def test_the_checker_finds_a_circle_made_by_an_import_inside_a_function(tmp_path):
    # The flat layout's shape: decoding imports beam_search inside a function, and
    # beam_search imports helpers back from decoding.
    package = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "decoding.py": """
                def decode():
                    from textrnn.beam_search import beam_search
                    return beam_search()
            """,
            "beam_search.py": "from textrnn.decoding import decode as _helper\n",
            "special_tokens.py": "PAD_ID = 0\n",
        },
    )
    graph = import_graph(package)
    assert circles(graph) == [["textrnn.beam_search", "textrnn.decoding"]]


def test_the_checker_sees_a_submodule_importing_its_package_face(tmp_path):
    package = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "decoding/__init__.py": "from textrnn.decoding.sampling import sample\n",
            "decoding/sampling.py": "from textrnn.decoding import GREEDY\n",
        },
    )
    assert circles(import_graph(package)) == [["textrnn.decoding", "textrnn.decoding.sampling"]]


def test_the_checker_flags_a_layer_importing_a_task_and_a_task_importing_another(tmp_path):
    package = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "training/__init__.py": "",
            "training/runs.py": """
                def load_run(path):
                    from textrnn.charlm.train import load_charlm_run
                    return load_charlm_run(path)
            """,
            "charlm/__init__.py": "",
            "charlm/train.py": "",
            "charlm/model.py": "CELLS = {}\n",
            "sentiment/__init__.py": "",
            "sentiment/model.py": "from textrnn.charlm.model import CELLS\n",
            "cli.py": "import textrnn.charlm.train\nfrom textrnn import sentiment\n",
        },
    )
    assert layer_violations(import_graph(package)) == [
        "textrnn.sentiment.model imports textrnn.charlm.model (another task)",
        "textrnn.training.runs imports textrnn.charlm.train (a higher layer)",
    ]


def test_an_unplaced_package_is_an_error(tmp_path):
    package = _write_package(tmp_path, {"__init__.py": "", "helpers/__init__.py": ""})
    with pytest.raises(AssertionError, match="helpers"):
        for module in import_graph(package):
            layer_of(module)
