"""The YAML dialect of flow and transcript files, read into plain data with positions.

PyYAML's composer keeps where every node starts; ``to_plain`` turns the node tree into
dicts, lists and scalars and records each value's (and each key's) line:column in a
``Positions``, so that every later problem can point at the file. A YAML syntax error
becomes one ``Problem`` with a hint (``syntax_problem``).

The dialect is YAML 1.2-like on purpose: only ``true``/``false`` are booleans (so the
Norwegian language code ``no`` and a synonym ``yes`` stay text) and ``9:00`` is not a
base-60 number. Keys are plain scalars: no ``<<`` merges, no key given twice.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.flow_problems import FieldPath, Positions, Problem, ProblemSink, format_path

__all__ = ["FlowYamlLoader", "parse_yaml_documents", "syntax_problem", "to_plain"]

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_NULL = "tag:yaml.org,2002:null"
_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"


class FlowYamlLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars (no yes/no/on/off, no 9:00 = 540)."""


FlowYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in {_BOOL, _INT, _FLOAT, _TIMESTAMP}]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
FlowYamlLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
FlowYamlLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
FlowYamlLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)

_SYNTAX_HINTS = (
    ("found character '\\t'", "indent with spaces, not tabs"),
    ("mapping values are not allowed", "put quotes around a text that contains ': '"),
    ("could not find expected ':'", "each line needs `key: value`; check the indentation"),
    ("expected <block end>", "check the indentation: items of one list or mapping line up"),
    (
        "while parsing a flow",
        "inside { } or [ ], put texts that contain , ? : or # in "
        "quotes, or write one `key: value` per line",
    ),
    ("found undefined alias", "define the &anchor before using *alias"),
    ("expected a single document", "remove the `---` line: one flow per file"),
    ("found unexpected end of stream", "close the quote or bracket that is still open"),
    ("while scanning a quoted scalar", "close the quote that is still open"),
    (
        "found character that cannot start any token",
        "put quotes around texts that start with @, ` or another special character",
    ),
)


def syntax_problem(error: yaml.YAMLError, source: str) -> Problem:
    line, column = 1, 1
    message = str(error)
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        if error.context_mark is not None and "end of stream" in (error.problem or ""):
            mark = error.context_mark  # where the unclosed quote or bracket starts
        if mark is not None:
            line, column = mark.line + 1, mark.column + 1
        message = " ".join(part for part in (error.context, error.problem) if part)
    elif isinstance(error, yaml.reader.ReaderError):
        message = f"character {error.character!r} is not allowed in YAML"
    text = str(error)
    hint = next((h for needle, h in _SYNTAX_HINTS if needle in text), "fix the YAML syntax")
    return Problem(source, line, column, "(YAML syntax)", f"invalid YAML: {message}", hint)


def _scalar(node: ScalarNode, path: FieldPath, sink: ProblemSink) -> Any:
    value: str = node.value
    if node.tag == _NULL:
        return None
    if node.tag == _BOOL:
        return value.lower() == "true"
    if node.tag == _INT:
        return int(value)
    if node.tag == _FLOAT:
        return float(value)
    if node.tag != _STR:
        sink.error(path, f"unsupported YAML tag {node.tag!r}", "remove the tag (the `!...` part)")
    return value


def to_plain(node: Node, path: FieldPath, sink: ProblemSink, depth: int = 0) -> Any:
    sink.positions.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if depth > 50:
        sink.error(path, "the document nests too deeply", "simplify the structure")
        return None
    if isinstance(node, ScalarNode):
        return _scalar(node, path, sink)
    if isinstance(node, SequenceNode):
        return [to_plain(child, (*path, i), sink, depth + 1) for i, child in enumerate(node.value)]
    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE:
                line, column = key_mark
                sink.problems.append(
                    Problem(
                        sink.source,
                        line,
                        column,
                        format_path(path),
                        "unsupported key",
                        "keys are plain words such as `id` or `fi` (no `<<` merges)",
                    )
                )
                continue
            key = str(key_node.value)
            child = (*path, key)
            if key in out:
                line, column = key_mark
                sink.problems.append(
                    Problem(
                        sink.source, line, column, format_path(child),
                        f"`{key}` is given twice",
                        "remove one of them: the later one would silently win",
                    )
                )  # fmt: skip
                continue
            sink.positions.keys[child] = key_mark
            out[key] = to_plain(value_node, child, sink, depth + 1)
        return out
    return None  # pragma: no cover - PyYAML has only these three node kinds


def parse_yaml_documents(
    text: str, source: str = "<string>"
) -> tuple[list[tuple[Any, Positions]], list[Problem]]:
    """Every YAML document in ``text`` as plain data with positions, in the flow dialect.

    Used for transcript files (several conversations separated by ``---``).
    """
    documents: list[tuple[Any, Positions]] = []
    problems: list[Problem] = []
    try:
        nodes = list(yaml.compose_all(text, Loader=FlowYamlLoader))
    except yaml.YAMLError as error:
        return [], [syntax_problem(error, source)]
    for node in nodes:
        if node is None:
            continue
        positions = Positions()
        sink = ProblemSink(source, positions)
        documents.append((to_plain(node, (), sink), positions))
        problems.extend(sink.problems)
    return documents, problems
