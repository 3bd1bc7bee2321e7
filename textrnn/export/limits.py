"""The caps every export (and the Python API behind it) enforces on one call.

A serving process must survive any request: a `max_length` of 2**31 - 1 or a beam of a
million would otherwise allocate until the process aborts. `ExportLimits` holds the caps;
each task reads the fields that concern it, checks its inputs against them in the graph
(`textrnn.export.input_checks`) and records them in the export's `textrnn_export.json`.

Example:
    >>> ExportLimits().max_new_tokens
    4096
    >>> ExportLimits.from_overrides(["max_batch_size=8"]).max_batch_size
    8
"""

from __future__ import annotations

import dataclasses

from textrnn.decoding.strategies import is_int


@dataclasses.dataclass(frozen=True)
class ExportLimits:
    """Caps on one call of an exported signature (and of the Python API).

    A value outside a cap is refused with an `InvalidArgumentError` (Python API:
    `ValueError`) that names the input, the value and the allowed range; only the
    token caps on inputs truncate and the translator's `max_length` is clamped, as
    documented below.

    Args:
        max_batch_size: most strings in one call, every signature (the Python API splits
            longer lists into batches of this size).
        max_new_tokens: the most tokens (character LM: characters) generated per row. The
            character LM refuses a larger `max_length`; for the translator a larger one
            acts as `max_new_tokens` (its rows also stop at `ceil(max_length_ratio *
            source tokens) + max_length_offset`).
        max_beam_width: largest `beam_width` (translator input, character-LM export
            option).
        max_n_best: largest `n_best` (translator; it is also at most `beam_width`).
        max_input_bytes: longest input string in UTF-8 bytes (prompt, text or source),
            checked before anything is tokenised.
        max_prompt_chars: character LM: a longer prompt is read by its last
            `max_prompt_chars` characters (the `text` output still starts with all of it).
        max_source_tokens: translator: a longer source is cut to its first
            `max_source_tokens` tokens (`source_tokens` shows what was translated).

    Raises:
        ValueError: a field that is not a positive integer, naming it.

    Example:
        >>> ExportLimits(max_beam_width=4).max_n_best
        8
    """

    max_batch_size: int = 32
    max_new_tokens: int = 4096
    max_beam_width: int = 8
    max_n_best: int = 8
    max_input_bytes: int = 65536
    max_prompt_chars: int = 4096
    max_source_tokens: int = 128

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            # int32 inputs are compared with these caps in the graph.
            if not is_int(value) or not 1 <= value < 2**31:
                raise ValueError(
                    f"Expected a positive 32-bit integer for `{field.name}`. "
                    f"Received: {field.name}={value!r}"
                )

    def to_dict(self) -> dict:
        """The caps by name (what `textrnn_export.json` records)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_overrides(cls, overrides) -> ExportLimits:
        """Limits from `NAME=VALUE` strings (the command line's `--limit`), the defaults
        elsewhere.

        Raises:
            ValueError: an unknown name, a malformed item or a value out of range.
        """
        return parse_overrides(cls, overrides, int, "an integer")


def parse_overrides(cls, overrides, convert, kind: str):
    """An instance of the dataclass `cls` from `NAME=VALUE` strings, each value made by
    `convert` (e.g. `int`); the defaults elsewhere.

    Args:
        cls: a dataclass of caps (`ExportLimits`, the server's `ServerLimits`).
        overrides: `NAME=VALUE` strings.
        convert: turns a value string into the field's value.
        kind: what `convert` expects, for the error message ("an integer").

    Raises:
        ValueError: an unknown name, a malformed item or a value `convert` refuses.

    Example:
        >>> parse_overrides(ExportLimits, ["max_beam_width=4"], int, "an integer")
    """
    names = [field.name for field in dataclasses.fields(cls)]
    values = {}
    for item in overrides:
        name, sep, value = str(item).partition("=")
        name = name.strip()
        if not sep or name not in names:
            raise ValueError(f"Expected NAME=VALUE with NAME one of {names}. Received: {item!r}")
        try:
            values[name] = convert(value.strip())
        except ValueError:
            raise ValueError(
                f"Expected {kind} for `{name}`. Received: {name}={value.strip()!r}"
            ) from None
    return cls(**values)
