"""Static facts about Python source files, read with :mod:`ast` (nothing is imported)."""

from __future__ import annotations

import ast
import functools

__all__ = ["call_assignments", "receiver_functions"]

_RECEIVER_MODULES = frozenset({"django.dispatch", "django.dispatch.dispatcher"})


@functools.lru_cache(maxsize=256)
def _parse(filename: str) -> ast.Module | None:
    try:
        with open(filename, "rb") as source:
            return ast.parse(source.read(), filename)
    except (OSError, SyntaxError, ValueError):
        return None


def call_assignments(filename: str) -> frozenset[str]:
    """Module-level names bound to the result of a call (``done = Signal()``)."""
    tree = _parse(filename)
    if tree is None:
        return frozenset()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.target, ast.Name)
        ):
            names.add(node.target.id)
    return frozenset(names)


def _receiver_aliases(tree: ast.Module) -> set[str]:
    """Names ``django.dispatch.receiver`` is imported as (``receiver`` by default)."""
    aliases = {"receiver"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in _RECEIVER_MODULES:
            aliases.update(a.asname or a.name for a in node.names if a.name == "receiver")
    return aliases


def _is_receiver_decorator(node: ast.expr, aliases: set[str]) -> bool:
    func = node.func if isinstance(node, ast.Call) else node
    if isinstance(func, ast.Name):
        return func.id in aliases
    return isinstance(func, ast.Attribute) and func.attr == "receiver"


def receiver_functions(filename: str) -> list[tuple[str, int]]:
    """``(name, line)`` of each top-level function decorated with ``@receiver(...)``."""
    tree = _parse(filename)
    if tree is None:
        return []
    aliases = _receiver_aliases(tree)
    return [
        (node.name, node.lineno)
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and any(_is_receiver_decorator(d, aliases) for d in node.decorator_list)
    ]
