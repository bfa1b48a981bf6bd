"""Reading the config file without letting it hang, exhaust memory or mean something else.

Kept apart from the schema (:mod:`daemon.config`): this is about the file and its YAML, whatever
keys it holds. A config is a few kilobytes of plain mappings, so anything far beyond that is
refused with a plain message rather than read:

- only a regular file is read (a FIFO would block for ever, ``/dev/zero`` never ends), at most
  :data:`MAX_BYTES`;
- YAML aliases may not refer to themselves, and the document, with every alias expanded, may not
  hold more than :data:`MAX_VALUES` values (a "billion laughs" file is a few lines long);
- an unquoted ``9:00`` is a YAML 1.1 base-60 *number* (540), not a time: it is refused with the fix;
- ``.nan`` and ``.inf`` are refused: no setting means "not a number";
- collections nested deeper than :data:`MAX_DEPTH` are refused as the parser meets them.

libyaml's parser is used when PyYAML has it (a thousand-account config reads in a tenth of the time);
refused YAML is then read again with the pure-Python parser, whose messages the user has always seen.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

MAX_BYTES = 1024 * 1024
MAX_VALUES = 20_000
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


class ConfigFileError(ValueError):
    """The config file cannot be read or its YAML is refused; each item of ``problems`` is one line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_config_file(path: Path) -> str:
    """The text of the config file at ``path``: a regular UTF-8 file of at most :data:`MAX_BYTES`.

    Raises :class:`FileNotFoundError` when there is none, :class:`ConfigFileError` otherwise.
    """
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise ConfigFileError([f"{path}: is a directory, not a config file"]) from None
    except OSError as exc:
        raise ConfigFileError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = ("a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode)
                    else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "not a file")
            raise ConfigFileError([f"{path}: is {kind}, not a regular config file"])
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ConfigFileError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    finally:
        os.close(fd)
    if size > MAX_BYTES:
        raise ConfigFileError([f"{path}: is larger than {MAX_BYTES // 1024} KiB; a Salvage config is a few KiB"])
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileError([f"{path}: is not UTF-8 text (byte {exc.start})"]) from None


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


class _Walk:
    """Checks a composed YAML node graph: cycles, expanded size, base-60 numbers, NaN and infinity."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sizes: dict[int, int] = {}
        self.open: set[int] = set()
        self.problems: list[str] = []

    def where(self, node: yaml.Node, path: tuple[str | int, ...]) -> str:
        return f"{_dotted(path)} ({self.name}:{node.start_mark.line + 1})"

    def size(self, node: yaml.Node, path: tuple[str | int, ...]) -> int:
        key = id(node)
        if key in self.sizes:
            return self.sizes[key]  # an alias: its values count again, but it is checked once
        if key in self.open:
            raise ConfigFileError([f"{self.where(node, path)}: a YAML alias refers to itself; "
                                   "recursive anchors are not allowed"])
        self.open.add(key)
        total = 1
        if isinstance(node, yaml.ScalarNode):
            self.scalar(node, path)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                total += self.size(item, (*path, index))
                self.limit(total, node, path)
        elif isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                label = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                total += self.size(key_node, path) + self.size(value_node, (*path, str(label)))
                self.limit(total, node, path)
        self.open.discard(key)
        self.sizes[key] = total
        return total

    def limit(self, total: int, node: yaml.Node, path: tuple[str | int, ...]) -> None:
        if total > MAX_VALUES:
            raise ConfigFileError([f"{self.where(node, path)}: with its YAML aliases expanded this holds more "
                                   f"than {MAX_VALUES} values; a Salvage config needs far fewer (aliases of aliases?)"])

    def scalar(self, node: yaml.ScalarNode, path: tuple[str | int, ...]) -> None:
        if node.style:  # quoted or block text: a string, whatever it looks like (plain: None, or '' from libyaml)
            return
        if node.tag == _INT and ":" in node.value:
            self.problems.append(f'{self.where(node, path)}: write times as quoted "HH:MM" (unquoted, YAML reads '
                                 f"{node.value} as a base-60 number)")
        elif node.tag == _FLOAT and node.value.lower().lstrip("+-") in (".inf", ".nan"):
            self.problems.append(f"{self.where(node, path)}: {node.value} is not a usable number; "
                                 "write a finite number")


MAX_DEPTH = 50

try:  # libyaml's parser (the C extension PyYAML is usually built with): ten times the pure-Python one
    from yaml.cyaml import CParser as _FastParser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - a PyYAML built without libyaml
    _FastParser = None  # type: ignore[assignment, misc]


class _TooDeep(Exception):
    def __init__(self, mark: Any) -> None:
        super().__init__("nested too deeply")
        self.mark = mark


class _DepthComposer(Composer):
    """PyYAML's composer, refusing collections nested deeper than :data:`MAX_DEPTH` as it meets them.

    The check runs on the parser's events before the (recursive) composition goes any deeper, so a
    file of a million ``[`` is refused in one pass without exhausting the stack.
    """

    depth = 0

    def compose_sequence_node(self, anchor: Any) -> Any:
        return self._nested(super().compose_sequence_node, anchor)

    def compose_mapping_node(self, anchor: Any) -> Any:
        return self._nested(super().compose_mapping_node, anchor)

    def _nested(self, compose: Any, anchor: Any) -> Any:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _TooDeep(self.peek_event().start_mark)  # type: ignore[attr-defined]
        try:
            return compose(anchor)
        finally:
            self.depth -= 1


class _Constructing(SafeConstructor):
    """The safe constructor, with a value its explicit tag cannot read (``!!int x``) a YAML error."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, AttributeError, KeyError):
            tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
            raise ConstructorError(None, None, f"{node.value!r} cannot be read as {tag}", node.start_mark) from None


class _PythonLoader(Reader, Scanner, Parser, _DepthComposer, _Constructing, Resolver):
    """The pure-Python loader: what the messages of refused YAML come from."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _DepthComposer.__init__(self)
        _Constructing.__init__(self)
        Resolver.__init__(self)


if _FastParser is not None:

    class _FastLoader(_DepthComposer, _FastParser, _Constructing, Resolver):  # type: ignore[misc, valid-type]
        """libyaml's parser under the Python composer (for the depth check) and safe constructor."""

        def __init__(self, stream: str) -> None:
            _FastParser.__init__(self, stream)
            _DepthComposer.__init__(self)
            _Constructing.__init__(self)
            Resolver.__init__(self)

    _LOADERS: tuple[type, ...] = (_FastLoader, _PythonLoader)
else:  # pragma: no cover
    _LOADERS = (_PythonLoader,)


def _invalid(exc: yaml.YAMLError, name: str) -> ConfigFileError:
    mark = getattr(exc, "problem_mark", None)
    where = f"{name}:{mark.line + 1}" if mark else name
    return ConfigFileError([f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}"])


def _compose(text: str, name: str, loader_class: type) -> tuple[Any, Any]:
    """The root node of the single document in ``text`` (None if empty) and its loader."""
    loader = loader_class(text)
    try:
        return loader.get_single_node(), loader
    except _TooDeep as exc:
        loader.dispose()
        where = f"{name}:{exc.mark.line + 1}" if exc.mark is not None else name
        raise ConfigFileError([f"{where}: the YAML is nested too deeply for a config file"]) from None
    except RecursionError:
        loader.dispose()
        raise ConfigFileError([f"{name}: the YAML is nested too deeply for a config file"]) from None
    except BaseException:
        loader.dispose()
        raise


def _refused(text: str, name: str, fast: yaml.YAMLError) -> ConfigFileError:
    """The message for YAML the fast parser refused: the pure-Python parser's, as it always was.

    libyaml words its errors differently ("did not find expected key"); where it refuses what the
    Python parser accepts, its own message is given.
    """
    if len(_LOADERS) == 1:
        return _invalid(fast, name)
    try:
        _, loader = _compose(text, name, _PythonLoader)
        loader.dispose()
    except yaml.YAMLError as exc:
        return _invalid(exc, name)
    return _invalid(fast, name)


def load_yaml(text: str, name: str) -> Any:
    """The data of a YAML config text, checked as described in this module's docstring.

    Raises :class:`ConfigFileError` (every problem found, each with key path, file and line).
    """
    try:
        node, loader = _compose(text, name, _LOADERS[0])
    except yaml.YAMLError as exc:
        raise _refused(text, name, exc) from None
    try:
        if node is None:
            return None
        walk = _Walk(name)
        try:
            walk.size(node, ())
        except RecursionError:
            raise ConfigFileError([f"{name}: the YAML is nested too deeply for a config file"]) from None
        if walk.problems:
            raise ConfigFileError(walk.problems)
        try:
            return loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise _invalid(exc, name) from None
    finally:
        loader.dispose()
