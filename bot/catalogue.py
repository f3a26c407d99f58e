"""The catalogue: the current flows, read from one folder and looked up by id, keyword or code.

``Catalogue.load(folder)`` is the one way to load it: every file is read with
``bot.flow_loader``, the problems between files are added (``bot.flow_validate``:
duplicate ids, keywords or codes), and any error refuses the whole folder, so that a
service never starts with half its flows. ``read_catalogue`` is the same reading without
the refusal, for ``palaute flows validate``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from bot.flow import Flow
from bot.flow_loader import Reading, flow_version, read_flow_file
from bot.flow_problems import FlowError
from bot.flow_validate import check_catalogue, normalise_word

__all__ = ["Catalogue", "flow_files", "read_catalogue"]


def flow_files(paths: Iterable[str | Path]) -> list[Path]:
    """The YAML files named, directories expanded (sorted, non-recursive)."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        else:
            out.append(path)
    return out


def read_catalogue(paths: Iterable[str | Path]) -> list[Reading]:
    """Read several flow files and add the problems between them (duplicate ids, keywords)."""
    readings = [read_flow_file(path) for path in flow_files(paths)]
    for reading, problems in zip(readings, check_catalogue(readings), strict=True):
        if problems:
            reading.problems.extend(problems)
            reading.problems.sort(key=lambda p: (p.line, p.column))
            if any(p.is_error for p in problems):
                reading.flow = None
    return readings


class Catalogue:
    """The current flows, looked up by id, start keyword or start code."""

    def __init__(self, flows: Iterable[Flow], texts: Mapping[str, str] | None = None) -> None:
        """``texts``: flow id -> the exact YAML each flow was read from (see ``text_of``)."""
        self._texts = dict(texts or {})
        self._flows: dict[str, Flow] = {}
        self._keywords: dict[str, tuple[Flow, str]] = {}
        self._codes: dict[str, tuple[Flow, str | None]] = {}
        self._typed_codes: dict[str, str] = {}  # casefolded -> the code as written
        for flow in flows:
            if flow.id in self._flows:
                raise ValueError(f"two flows have the id {flow.id!r}")
            self._flows[flow.id] = flow
            for language, words in flow.triggers.keywords.items():
                for word in words:
                    self._keywords.setdefault(normalise_word(word), (flow, language))
            only_point = flow.service_points[0] if len(flow.service_points) == 1 else None
            for code, point in flow.triggers.codes.items():
                self._codes.setdefault(code, (flow, point or only_point))
                self._typed_codes.setdefault(code.casefold(), code)

    @classmethod
    def load(cls, directory: str | Path) -> Catalogue:
        """Every flow in ``directory``; raises FlowError if any file has errors."""
        readings = read_catalogue([directory])
        problems = [p for r in readings for p in r.problems]
        if any(p.is_error for p in problems):
            raise FlowError(problems)
        flows = [r.flow for r in readings if r.flow is not None]
        return cls(flows, {r.flow.id: r.text for r in readings if r.flow is not None})

    def text_of(self, flow: Flow) -> str | None:
        """The YAML text ``flow`` was loaded from (None if unknown or another version).

        Storage keeps it so that runs in progress stay on their version even after the
        file changes; unlike re-reading the file, this cannot race with an edit.
        """
        text = self._texts.get(flow.id)
        if text is None or flow_version(text) != flow.version:
            return None
        return text

    def get(self, flow_id: str) -> Flow | None:
        return self._flows.get(flow_id)

    def all(self) -> tuple[Flow, ...]:
        return tuple(self._flows.values())

    def by_keyword(self, text: str) -> Flow | None:
        found = self.keyword(text)
        return found[0] if found else None

    def keyword(self, text: str) -> tuple[Flow, str] | None:
        """The flow a start keyword (the whole message) opens, with the keyword's language."""
        return self._keywords.get(normalise_word(text))

    def by_code(self, code: str) -> tuple[Flow, str | None] | None:
        """The flow a start code opens, with the service point the code stands for."""
        return self._codes.get(code.strip())

    def typed_code(self, text: str) -> str | None:
        """The start code a typed message (e.g. an SMS from a poster's QR code) is, as
        the flow writes it; any case, surrounding spaces ignored. None if it is none."""
        return self._typed_codes.get(text.strip().casefold())

    def __len__(self) -> int:
        return len(self._flows)

    def __contains__(self, flow_id: object) -> bool:
        return flow_id in self._flows
