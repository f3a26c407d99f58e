"""Problems found in flow files, each pinned to file:line:column and a field path."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

# Where a value sits inside a flow document, key by key and index by index:
# ("steps", 2, "options", 0, "synonyms", "fi"). Not a file path (that is pathlib.Path).
FieldPath = tuple[str | int, ...]


class Severity(StrEnum):
    ERROR = "error"  # the flow cannot be used; `flows validate` exits 1
    WARNING = "warning"  # works, but probably not what the author meant


def format_path(path: FieldPath) -> str:
    """``steps[2].options[0].synonyms.fi`` (indexes count from 0, as in JSON paths)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' Did you mean 'x'?' or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def sentence(text: str) -> str:
    """``text`` with its first letter upper-case (unlike str.capitalize, keeps the rest)."""
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Problem:
    source: str  # file path (or "<string>")
    line: int  # 1-based
    column: int  # 1-based
    path: str  # the field, e.g. "steps[1].next[0].goto"
    message: str
    hint: str = ""
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def format(self) -> str:
        head = f"{self.source}:{self.line}:{self.column}: {self.severity.value}: "
        head += f"{self.path}: {self.message}"
        return f"{head}\n    hint: {self.hint}" if self.hint else head


@dataclass
class Positions:
    """Where each value (and each mapping key) of a YAML document starts."""

    values: dict[FieldPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[FieldPath, tuple[int, int]] = field(default_factory=dict)
    # Where each step's branches and default `next` are written, by step index: the checks
    # in bot.flow_validate work on the built Flow and need these to point at the YAML.
    branches: dict[tuple[int, int], FieldPath] = field(default_factory=dict)
    default_next: dict[int, FieldPath] = field(default_factory=dict)

    def at(self, path: FieldPath) -> tuple[int, int]:
        """The value's position, or its nearest enclosing field's when it is missing."""
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return found
        return (1, 1)

    def key_at(self, path: FieldPath) -> tuple[int, int]:
        """The position of the key naming ``path`` (falls back to the value's)."""
        return self.keys.get(path) or self.at(path)

    def has(self, path: FieldPath) -> bool:
        return path in self.values


class FlowError(Exception):
    """A flow file has errors. Retrying will not help: the file must be fixed."""

    retryable = False

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        errors = [p for p in self.problems if p.is_error]
        shown = "\n".join(p.format() for p in errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} error(s) in flow:\n{shown}{more}")


@dataclass
class ProblemSink:
    """Collects problems for one source, resolving paths to positions."""

    source: str
    positions: Positions
    problems: list[Problem] = field(default_factory=list)

    def add(
        self,
        path: FieldPath,
        message: str,
        hint: str = "",
        severity: Severity = Severity.ERROR,
        *,
        at_key: bool = False,
    ) -> None:
        line, column = self.positions.key_at(path) if at_key else self.positions.at(path)
        self.problems.append(
            Problem(self.source, line, column, format_path(path), message, hint, severity)
        )

    def error(self, path: FieldPath, message: str, hint: str = "", *, at_key: bool = False) -> None:
        self.add(path, message, hint, Severity.ERROR, at_key=at_key)

    def warning(
        self, path: FieldPath, message: str, hint: str = "", *, at_key: bool = False
    ) -> None:
        self.add(path, message, hint, Severity.WARNING, at_key=at_key)

    @property
    def has_errors(self) -> bool:
        return any(p.is_error for p in self.problems)
