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
        "that cannot start any token",  # PyYAML names the character in between
        "put quotes around texts that start with @, ` or another special character",
    ),
)


_CLOSERS = {"[": "]", "{": "}"}


def _position(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def _closed_by_end_of_line(buffer: str, opener: int, problem: int) -> bool:
    """Whether the bracket at index ``opener`` is closed by the end of ``problem``'s line.

    A rough scan (quoted texts and comments skipped) to tell a list or mapping that was
    never closed (report where it opens) from one that spans lines and is closed, with the
    mistake inside it (report the mistake).
    """
    end = buffer.find("\n", problem)
    depth, quote, index = 0, "", opener
    while index < (len(buffer) if end < 0 else end):
        char = buffer[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#" and buffer[index - 1 : index] in (" ", "\t", "\n"):
            index = buffer.find("\n", index)
            if index < 0:
                break
            continue
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return True
        index += 1
    return False


def _opened_problem(error: yaml.MarkedYAMLError) -> tuple[tuple[int, int], str, str] | None:
    """Position, message and hint when the problem began before where the parser gave up.

    PyYAML reports where it could not go on (the problem mark) and, for some errors, where
    the construct it was reading began (the context mark). For a quote or bracket that is
    never closed, and for a line with no `:`, the beginning is where the author must look.
    Block contexts are left out: their beginning is the enclosing block, not the mistake.
    """
    context, problem = error.context_mark, error.problem_mark
    if context is None or problem is None or context.buffer is None:
        return None
    buffer: str = context.buffer
    opened_at = "{}:{}".format(*_position(context))
    stopped_at = "{}:{}".format(*_position(problem))
    char = buffer[context.pointer]
    at_end = problem.pointer >= len(buffer.rstrip("\0 \n"))
    reason = error.problem or ""
    if error.context in ("while parsing a flow sequence", "while parsing a flow mapping"):
        if char not in _CLOSERS or problem.line == context.line:
            return None
        if not at_end and _closed_by_end_of_line(buffer, context.pointer, problem.pointer):
            return None
        hint = (
            f"add the missing `{_CLOSERS[char]}`; inside {{ }} or [ ], put texts that "
            "contain , ? : or # in quotes"
        )
        if at_end:
            return _position(context), f"the `{char}` opened at {opened_at} is never closed", hint
        message = f"the `{char}` opened at {opened_at} is not closed before {stopped_at} ({reason})"
        return _position(context), message, hint
    if error.context == "while scanning a quoted scalar" and "end of stream" in reason:
        message = f"the `{char}` opened at {opened_at} is never closed"
        return _position(context), message, "close the quote that is still open"
    if error.context == "while scanning a simple key" and problem.line > context.line:
        message = f"the key at {opened_at} has no `:` after it (seen at {stopped_at})"
        return _position(context), message, "each line needs `key: value`; check the indentation"
    return None


def syntax_problem(error: yaml.YAMLError, source: str) -> Problem:
    line, column = 1, 1
    message = str(error)
    text = str(error)
    hint = next((h for needle, h in _SYNTAX_HINTS if needle in text), "fix the YAML syntax")
    if isinstance(error, yaml.MarkedYAMLError):
        opened = _opened_problem(error)
        if opened is not None:
            (line, column), message, hint = opened
        else:
            mark = error.problem_mark or error.context_mark
            if mark is not None:
                line, column = _position(mark)
            message = " ".join(part for part in (error.context, error.problem) if part)
    elif isinstance(error, yaml.reader.ReaderError):
        message = f"character {error.character!r} is not allowed in YAML"
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
