"""Reading what the doctor is given: files and directories of Kubernetes YAML and Dockerfiles.

Anything that cannot be read stops the whole run with one ``InputError`` that
names the file and line: findings computed from half of a deployment would be
wrong in both directions (a PodDisruptionBudget or an Ingress may be in the
file that failed). YAML keeps the line of every key, so findings can point at
the field they are about.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

#: The start of a template action that was never rendered (Helm, Go templates).
PLACEHOLDER = re.compile(r"\{\{.*?\}\}")
STDIN, STDIN_NAME = "-", "<stdin>"


class InputError(Exception):
    """Input the doctor cannot read; ``str()`` is the one line to print."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


@dataclass(frozen=True)
class Where:
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


class YamlMap(dict[object, object]):
    """A YAML mapping that remembers its own line and the line of each key."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: dict[object, int] = {}


class YamlList(list[object]):
    """A YAML sequence that remembers its own line and the line of each item."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: list[int] = []


@dataclass(frozen=True)
class Document:
    """One YAML document of a file (a file may hold many, separated by ``---``)."""

    path: str
    body: YamlMap

    def where(self, line: int | None = None) -> Where:
        return Where(self.path, line or self.body.line)


@dataclass(frozen=True)
class Dockerfile:
    path: str
    text: str


@dataclass
class Inputs:
    documents: list[Document]
    dockerfiles: list[Dockerfile]
    #: Documents that are not Kubernetes objects (no kind), e.g. a values.yaml.
    other_documents: int = 0


def is_dockerfile(name: str) -> bool:
    base = os.path.basename(name)
    return (
        base in ("Dockerfile", "Containerfile")
        or base.startswith(("Dockerfile.", "Containerfile."))
        or base.endswith((".Dockerfile", ".dockerfile", ".Containerfile"))
    )


def _is_yaml(name: str) -> bool:
    return name.endswith((".yaml", ".yml"))


def _walk(root: str) -> Iterator[str]:
    """The manifests under ``root``, in a stable order; hidden directories (.git, .github) are skipped."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if _is_yaml(name) or is_dockerfile(name):
                yield os.path.join(folder, name)


def _read_text(path: str) -> str:
    name = STDIN_NAME if path == STDIN else path
    try:
        if path == STDIN:
            return sys.stdin.read()
        with open(path, encoding="utf-8") as stream:
            return stream.read()
    except UnicodeDecodeError:
        raise InputError(name, None, "not UTF-8 text") from None
    except OSError as exc:
        raise InputError(name, None, exc.strerror or str(exc)) from None


def read(paths: Sequence[str]) -> Inputs:
    """Read every path (a file, a directory, or ``-`` for YAML on stdin)."""
    inputs = Inputs([], [])
    for given in paths:
        if os.path.isdir(given):
            files = list(_walk(given))
            if not files:
                raise InputError(given, None, "no Kubernetes YAML (*.yaml, *.yml) or Dockerfile in this directory")
        elif given == STDIN or os.path.exists(given):
            files = [given]
        else:
            raise InputError(given, None, "no such file or directory")
        for path in files:
            text = _read_text(path)
            path = STDIN_NAME if path == STDIN else path
            if is_dockerfile(path):
                inputs.dockerfiles.append(Dockerfile(path, text))
                continue
            for body in _yaml_documents(path, text):
                if isinstance(body, YamlMap) and "kind" in body:
                    if not isinstance(body["kind"], str):
                        raise InputError(path, body.lines["kind"], f"kind: expected a string, got {body['kind']!r}")
                    inputs.documents.append(Document(path, body))
                elif body is not None:
                    inputs.other_documents += 1
    return inputs


def _yaml_documents(path: str, text: str) -> list[object]:
    try:  # only the doctor needs PyYAML (the ``doctor`` extra), and only for YAML
        import yaml
    except ImportError:
        raise InputError(
            path, None, "reading YAML needs PyYAML, the doctor extra: pip install 'pyinit-containers[doctor]'"
        ) from None

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Iterator[YamlMap]:
        data = YamlMap(node.start_mark.line + 1)
        yield data
        loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key that is itself a mapping or a list", key_node.start_mark
                ) from None
            data[key] = loader.construct_object(value_node)
            data.lines[key] = key_node.start_mark.line + 1

    def sequence(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> Iterator[YamlList]:
        data = YamlList(node.start_mark.line + 1)
        yield data
        for item in node.value:
            data.append(loader.construct_object(item))
            data.lines.append(item.start_mark.line + 1)

    Loader.add_constructor("tag:yaml.org,2002:map", mapping)
    Loader.add_constructor("tag:yaml.org,2002:seq", sequence)
    try:
        return list(yaml.load_all(text, Loader=Loader))
    except yaml.YAMLError as exc:
        placeholder = first_placeholder(text)
        if placeholder is not None:
            raise unrendered(path, *placeholder) from None
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(path, None if mark is None else mark.line + 1, f"not valid YAML: {problem}") from None


def first_placeholder(text: str) -> tuple[int, str] | None:
    for number, line in enumerate(text.splitlines(), 1):
        match = PLACEHOLDER.search(line)
        if match:
            return number, match.group(0)
    return None


def unrendered(path: str, line: int, placeholder: str) -> InputError:
    return InputError(path, line, f"an unrendered template placeholder {placeholder}: render it first (helm template)")


def find_placeholder(node: object, line: int) -> tuple[int, str] | None:
    """The first string in ``node`` (a document of a checked kind) that still holds ``{{ ... }}``."""
    if isinstance(node, str):
        match = PLACEHOLDER.search(node)
        return None if match is None else (line, match.group(0))
    if isinstance(node, YamlMap):
        children: list[tuple[object, int]] = [(value, node.lines.get(key, line)) for key, value in node.items()]
    elif isinstance(node, YamlList):
        children = list(zip(node, node.lines))
    else:
        return None
    for child, child_line in children:
        found = find_placeholder(child, child_line)
        if found is not None:
            return found
    return None
