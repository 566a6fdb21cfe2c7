"""Read YAML strictly, or say exactly what is wrong where: the one YAML reader of mdm.

Policy layers and device profiles are edited by hand, so a typo must never turn into a
silent change or a crash. Built on PyYAML's safe constructor (no object construction),
this loader also refuses what `yaml.safe_load` lets through: a key given twice (the last one
would silently win), anchors, aliases and merge keys (the stuff of "billion laughs"),
nesting deeper than anyone writes by hand, dates that do not exist (`2015-02-30`),
numbers too large to store, files too big or not UTF-8. Every refusal is a `YamlError`
(an InputError) naming the file and line, so it ends in exit 2, never a traceback.

PyYAML's pure-Python parser decides what is YAML. Where PyYAML has libyaml, a file of the
plain kind people write (no tab, tag, directive or byte-order mark inside) is parsed by
libyaml's C parser, a tenth of the time, which reads that kind as the pure parser does;
anything else, and every file either refuses, is read by the pure parser, so what is
accepted and how a refusal reads never depend on libyaml.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import yaml

from mdm.errors import InputError, Problem

MAX_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_INT_DIGITS = 19  # 2**63 has 19 digits: anything longer cannot be an SQLite integer
_INT_LIMIT = 2**63
_REFUSED_TAGS = ("binary", "set", "omap", "pairs")
_IN_FULL = ("write the values out in full: mdm's YAML files allow no anchors, aliases,"
            " merge keys or special tags")


class _Refused(yaml.MarkedYAMLError):
    """A construct this loader does not accept (not a syntax error); `note` is the hint."""


def _refused(at: Any, problem: str, hint: str) -> _Refused:
    mark = getattr(at, "start_mark", at)  # an event's or node's, or a mark itself
    return _Refused(None, None, problem, mark, hint)


def _short(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= 40 else text[:20] + "…" + text[-8:])


class _PureParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    """PyYAML's pure-Python reader, scanner and parser: only where libyaml is missing."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        # Bound flow nesting as the scanner meets it: PyYAML's scanner slows down
        # quadratically with open brackets long before the composer sees the first node.
        if self.flow_level >= MAX_DEPTH:
            raise _refused(self.get_mark(), f"is nested more than {MAX_DEPTH} levels deep",
                           "flatten the structure")
        super().fetch_flow_collection_start(TokenClass)


class _Strict(yaml.composer.Composer, yaml.constructor.SafeConstructor):
    """The checks: composes and constructs nodes in Python from any parser's events."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[attr-defined]  # the parser's
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _refused(event, "uses a YAML anchor or alias", _IN_FULL)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _refused(event, f"is nested more than {MAX_DEPTH} levels deep",
                               "flatten the structure")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError):
            # PyYAML's constructors trust a tag: `!!int abc` fails inside int()
            raise _refused(node, f"{_short(node.value)} is not what its tag"
                           f" !!{str(node.tag).rsplit(':', 1)[-1]} says",
                           "drop the tag or write a value of that kind") from None

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _refused(key_node, "uses a YAML merge key (<<)", _IN_FULL)
                if not isinstance(key_node, yaml.ScalarNode):
                    continue  # the base class refuses unhashable keys itself
                key = self.construct_object(key_node)
                if key in seen:
                    raise _refused(key_node, f"key {_short(key_node.value)} is given twice"
                                   f" (first on line {seen[key]}); YAML would silently use"
                                   " the last one", "keep one of them")
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: Any) -> Any:
        digits = str(node.value).replace("_", "").lstrip("+-")
        value = None if len(digits) > MAX_INT_DIGITS else super().construct_yaml_int(node)
        if value is None or not -_INT_LIMIT < value < _INT_LIMIT:
            raise _refused(node, f"the number {_short(node.value)} is too large",
                           "numbers must fit in 64 bits")
        return value

    def construct_yaml_float(self, node: Any) -> Any:
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise _refused(node, f"{_short(node.value)} is not a finite number",
                           "write an ordinary number")
        return value

    def construct_yaml_timestamp(self, node: Any) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            raise _refused(node, f"{_short(node.value)} is not a real date or time",
                           "use a date that exists, as YYYY-MM-DD") from None

    def refuse_tag(self, node: Any) -> Any:
        raise _refused(node, f"uses the tag !!{node.tag.rsplit(':', 1)[-1]}, which mdm"
                       " does not accept", _IN_FULL)


for _name in ("int", "float", "timestamp"):
    _Strict.add_constructor(f"tag:yaml.org,2002:{_name}",
                            getattr(_Strict, f"construct_yaml_{_name}"))
for _name in _REFUSED_TAGS:
    _Strict.add_constructor(f"tag:yaml.org,2002:{_name}",  # type: ignore[type-var]
                            _Strict.refuse_tag)


def _loader(parser: Any, doc: str) -> type[Any]:
    """The strict loader on this parser: its events, composed and checked by _Strict."""

    class Loader(_Strict, parser, yaml.resolver.Resolver):  # type: ignore[misc]
        __doc__ = doc

        def __init__(self, stream: str) -> None:
            parser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    return Loader


PureStrictLoader = _loader(_PureParser, "The strict loader on PyYAML's pure-Python parser.")
# Events from libyaml's C parser are composed and constructed in Python (_Strict) just the
# same, event by event, so every check sees each event before the next is parsed.
try:
    from yaml._yaml import CParser
except ImportError:  # PyYAML built without libyaml
    CStrictLoader: type[Any] | None = None
else:
    CStrictLoader = _loader(CParser, "The strict loader on libyaml's parser.")
# Where libyaml and the pure parser part ways: tabs (libyaml takes them in more places),
# tags, directives, a byte-order mark inside the text. A file with any is read purely.
_NOT_PLAIN = re.compile(r"[\t\ufeff]|(?:^|[\s,\[\]{}])!|^%", re.MULTILINE)


@dataclass(frozen=True)
class Document:
    """A YAML file's data, and the line of every mapping key and list item (by path)."""

    data: Any
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)


def load(path: Path, max_bytes: int = MAX_BYTES) -> Any:
    """Read one YAML file strictly; raise InputError naming file and line on any problem."""
    return load_document(path, max_bytes).data


def load_document(path: Path, max_bytes: int = MAX_BYTES) -> Document:
    """Read one YAML file strictly, with the line of each key, or raise InputError."""
    name = str(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)  # never read more than the cap, whatever the size
    except OSError as exc:
        _fail(name, f"cannot be read: {exc.strerror or exc}",
              "check the path and its permissions")
    if len(raw) > max_bytes:
        _fail(name, f"is larger than {max_bytes // 1024} KiB", "split it into smaller files")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        _fail(f"{name}, line {line}", f"is not UTF-8 text (byte {exc.start} cannot be read)",
              "save it as UTF-8")
    return loads(text, name)


def loads(text: str, name: str) -> Document:
    """Parse YAML text strictly; `name` is how errors refer to it (usually the path)."""
    if CStrictLoader is not None and not _NOT_PLAIN.search(text):
        try:
            return _parse(text, name, CStrictLoader)
        except YamlError:
            pass  # said again below, exactly as the pure parser says it
    return _parse(text, name, PureStrictLoader)


def _parse(text: str, name: str, parser: type[Any]) -> Document:
    loader: Any = None
    try:
        loader = parser(text)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _Refused as exc:
        _fail(_where(name, exc.problem_mark), str(exc.problem), str(exc.note))
    except yaml.MarkedYAMLError as exc:
        _fail(_where(name, exc.problem_mark or exc.context_mark),
              f"is not valid YAML: {exc.problem or exc.context}",
              "check the indentation and quoting on that line")
    except yaml.reader.ReaderError as exc:
        line = text[:max(exc.position, 0)].count("\n") + 1
        _fail(f"{name}, line {line}", f"is not valid YAML: {exc.reason}",
              "remove control characters from the file")
    except yaml.YAMLError as exc:  # every other PyYAML error, so none escapes as a crash
        _fail(name, f"is not valid YAML: {exc}", "check the file's syntax")
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):  # see construct_object
        _fail(name, "has a value that does not fit its tag", "drop the tag (`!!int` and the like)")
    except RecursionError:  # nesting is bounded above; this is the last line of defence
        _fail(name, "is nested too deeply", "flatten the structure")
    finally:
        if loader is not None:
            loader.dispose()
    return Document(data, _key_lines(node))


def not_a_date(value: Any) -> tuple[str, str]:
    """Say why a value read for a date is none, and what to write (a date in quotes is
    text to YAML: say so, rather than ask for the form it is already in)."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            date.fromisoformat(value.strip())
            return (f"{value!r} is in quotes, so it is text, not a date",
                    f"write it without quotes: {value.strip()}")
    return (f"{value!r} is not a date" if value is not None else "is missing",
            "write it as YYYY-MM-DD")


def _where(name: str, mark: Any) -> str:
    return f"{name}, line {mark.line + 1}" if mark is not None else name


class YamlError(InputError):
    """A YAML file mdm cannot accept; `problem` says where and why, for problem lists."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.where}: {problem.message}", problem.hint)
        self.problem = problem


def _fail(where: str, message: str, hint: str) -> NoReturn:
    raise YamlError(Problem(where, message, hint))


def _key_lines(node: Any) -> dict[tuple[str, ...], int]:
    """Map each key path to its 1-based line, a list's items by their index as text
    (nesting is already bounded)."""
    out: dict[tuple[str, ...], int] = {}

    def walk(n: Any, path: tuple[str, ...]) -> None:
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                sub = path + (str(key.value),)
                out.setdefault(sub, key.start_mark.line + 1)
                walk(value, sub)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                sub = path + (str(i),)
                out.setdefault(sub, item.start_mark.line + 1)
                walk(item, sub)

    walk(node, ())
    return out
