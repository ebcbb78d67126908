"""The declared tools: ``register`` adds one (``adapters.tools`` declares them all at start-up); ``get``,
``canonical`` and ``tools`` answer from them. A store with no behaviour of its own, apart from
``adapters.registry`` (which runs the tools) so that the policy engine can name tools without importing the
registry that calls it. ``adapters.registry`` re-exports these names.
"""

from __future__ import annotations

from adapters.errors import UnknownTool
from adapters.types import SAFE_NAME, Tool

_REGISTRY: dict[str, Tool] = {}
_BY_SAFE_NAME: dict[str, str] = {}


def register(tool: Tool) -> Tool:
    if tool.name in _REGISTRY:
        raise ValueError(f"tool {tool.name} declared twice")
    if not SAFE_NAME.match(tool.safe_name):
        raise ValueError(f"tool {tool.name}: {tool.safe_name!r} is not a valid function name")
    if tool.safe_name in _BY_SAFE_NAME or tool.safe_name in _REGISTRY:
        raise ValueError(f"tool {tool.name}: its safe name {tool.safe_name} is another tool's")
    _REGISTRY[tool.name] = tool
    _BY_SAFE_NAME[tool.safe_name] = tool.name
    return tool


def tools() -> list[Tool]:
    return sorted(_REGISTRY.values(), key=lambda t: t.name)


def canonical(name: str) -> str:
    """The dotted name of a tool named either way; any other string (``*``, an unknown name) as it is."""
    if name in _REGISTRY:
        return name
    return _BY_SAFE_NAME.get(name, name)


def get(name: str) -> Tool:
    try:
        return _REGISTRY[canonical(name)]
    except KeyError:
        raise UnknownTool(name=name, allowed=sorted(_REGISTRY)) from None


def find(name: str) -> Tool | None:
    """The tool named either way, or None: for what a stored proposal's tool is (a tool since withdrawn from
    the registry still has its proposals shown)."""
    return _REGISTRY.get(canonical(name))
