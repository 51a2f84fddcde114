"""Parameters that take effect at run time; every other parameter of a node is read-only.

A node declares its parameters read-only (``ros2 param set`` is then refused: "parameter is
read-only") except those it registers here with a function that applies them. So a parameter set
at run time either changes what the node does, or is refused; never a success that changes
nothing.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult

Prepare = Callable[[dict[str, Any]], Callable[[], None]]


def declare(node: Any, name: str, default: Any, description: str, *, read_only: bool = True) -> Any:
    """Declare ``name`` with its description (read-only unless a :class:`RuntimeParameters` group
    applies it); returns its value."""
    return node.declare_parameter(name, default, ParameterDescriptor(description=description,
                                                                     read_only=read_only)).value


class RuntimeParameters:
    """The groups of a node's parameters that apply when set. ``add(names, prepare)``: when any of
    ``names`` is set, ``prepare(values)`` gets the group's values (the new ones over the current
    ones) and returns the function that applies them, or raises ValueError to refuse the change
    (its message is the reason ``ros2 param set`` shows). All groups of one request are prepared
    before any is applied."""

    def __init__(self, node: Any) -> None:
        self._node = node
        self._groups: list[tuple[frozenset[str], Prepare]] = []
        node.add_on_set_parameters_callback(self._on_set)

    @property
    def names(self) -> frozenset[str]:
        """Every parameter that applies when set."""
        return frozenset().union(*(names for names, _ in self._groups))

    def add(self, names: Sequence[str], prepare: Prepare) -> None:
        self._groups.append((frozenset(names), prepare))

    def attribute(self, name: str, target: Any, attribute: str, convert: Callable[[Any], Any] = lambda v: v) -> None:
        """Parameter ``name`` sets ``target.attribute`` to ``convert(value)``."""
        self.add([name], lambda values: lambda: setattr(target, attribute, convert(values[name])))

    def _on_set(self, parameters: list[Any]) -> SetParametersResult:
        new = {p.name: p.value for p in parameters}
        try:
            commits = [prepare({n: new[n] if n in new else self._node.get_parameter(n).value for n in names})
                       for names, prepare in self._groups if names & new.keys()]
        except (ValueError, TypeError) as error:
            return SetParametersResult(successful=False, reason=str(error))
        for commit in commits:
            commit()
        return SetParametersResult(successful=True)
