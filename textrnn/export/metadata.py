"""The export's metadata asset: `assets.extra/textrnn_metadata.json`.

What a server or a person wants to know about a version without loading it: the task,
the vocabulary sizes, the recipe, the textrnn version that wrote it and the run's
figures at export time (from its `results.json`). `assets.extra/` travels with the
SavedModel and TensorFlow Serving ignores everything in it but its warm-up file.

Example:
    >>> write_metadata("exports/x/1", "charlm", {"vocabulary": 69}, recipe={"model": {...}})
    >>> read_metadata("exports/x/1")["vocabulary_sizes"]
    {'vocabulary': 69}
"""

from __future__ import annotations

import json
from importlib import metadata as package_metadata
from pathlib import Path

from textrnn.export.warmup import WARMUP_DIR

METADATA_FILE = "textrnn_metadata.json"


def metadata_path(export_dir) -> Path:
    """Where a SavedModel's metadata asset lies (it may not exist)."""
    return Path(export_dir) / WARMUP_DIR / METADATA_FILE


def textrnn_version() -> str:
    """The installed textrnn's version ("unknown" when it is not installed)."""
    try:
        return package_metadata.version("textrnn")
    except package_metadata.PackageNotFoundError:
        return "unknown"


def write_metadata(
    export_dir, task: str, vocabulary_sizes: dict, recipe: dict | None = None, figures=None
) -> Path:
    """Writes the metadata asset of `export_dir`.

    Args:
        export_dir: a SavedModel directory.
        task: the task name (`charlm`, `sentiment`, `translate`).
        vocabulary_sizes: vocabulary name -> size (special tokens included).
        recipe: the resolved recipe as a dict (None: not known).
        figures: the run's figures (`results.json`), or None.

    Returns:
        The path of the asset.
    """
    content = {
        "task": task,
        "vocabulary_sizes": dict(vocabulary_sizes),
        "recipe": recipe,
        "textrnn_version": textrnn_version(),
        "figures": figures,
    }
    path = metadata_path(export_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2, sort_keys=True), encoding="utf-8")
    return path


def read_metadata(export_dir) -> dict | None:
    """The metadata asset of `export_dir` as a dict, or None when it has none."""
    path = metadata_path(export_dir)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def run_figures(run_dir) -> dict | None:
    """The figures of a run's `results.json` (its copy of the recipe, `config`, left
    out), or None when the run has no readable one."""
    path = Path(run_dir) / "results.json"
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(results, dict):
        return None
    return {key: value for key, value in results.items() if key != "config"}


def add_figures(export_dir, figures: dict | None) -> Path:
    """Records `figures` in an existing metadata asset of `export_dir`.

    Raises:
        FileNotFoundError: `export_dir` has no metadata asset.
    """
    path = metadata_path(export_dir)
    content = json.loads(path.read_text(encoding="utf-8"))
    content["figures"] = figures
    path.write_text(json.dumps(content, indent=2, sort_keys=True), encoding="utf-8")
    return path
