"""The function table shared by the row and the vectorised evaluator.

Every function has a ROW implementation over Python values (``common.expr.values`` types); the
vectorised evaluator uses an Arrow kernel where one is registered (``common.expr.vector``) and maps
the row implementation over the values otherwise, so both evaluators share one definition of what
a function answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.expr.parse import ExpressionError

RowFn = Callable[[list[Any]], Any]


@dataclass(frozen=True, slots=True)
class Fn:
    name: str
    min_args: int
    max_args: int | None
    row: RowFn
    out: str | None = None
    """LONG, DOUBLE, STRING or ARRAY<...>: the result type (None: the type of the values)."""
    literals: tuple[int, ...] = ()
    """Argument positions that must be literals (patterns, periods, type names)."""
    arrays: bool = False
    """Whether the function takes arrays / multi-value columns (scalar functions refuse them)."""
    check: Callable[[list[Any]], None] | None = None
    """Validates the literal arguments when the expression is compiled."""
    array_args: tuple[int, ...] | None = None
    """Positions of the array inputs (Druid's ``getArrayInputs``), -1 meaning every position;
    a multi-value column read at another position is a scalar use (implicitly mapped)."""

    def is_array_arg(self, pos: int) -> bool:
        if not self.arrays:
            return False
        if self.array_args is None or -1 in self.array_args:
            return True
        return pos in self.array_args


FUNCTIONS: dict[str, Fn] = {}


def register(
    name: str,
    min_args: int,
    max_args: int | None,
    row: RowFn,
    *,
    out: str | None = None,
    literals: tuple[int, ...] = (),
    arrays: bool = False,
    check: Callable[[list[Any]], None] | None = None,
    array_args: tuple[int, ...] | None = None,
) -> None:
    FUNCTIONS[name] = Fn(name, min_args, max_args, row, out, literals, arrays, check, array_args)


def alias(name: str, target: str) -> None:
    fn = FUNCTIONS[target]
    FUNCTIONS[name] = Fn(
        name,
        fn.min_args,
        fn.max_args,
        fn.row,
        fn.out,
        fn.literals,
        fn.arrays,
        fn.check,
        fn.array_args,
    )


def lookup(name: str, nargs: int, pos: int) -> Fn:
    fn = FUNCTIONS.get(name)
    if fn is None:
        raise ExpressionError(f"Function [{name}] is not supported (at position {pos})")
    if nargs < fn.min_args or (fn.max_args is not None and nargs > fn.max_args):
        if fn.min_args == fn.max_args:
            want = str(fn.min_args)
        elif fn.max_args is None:
            want = f"at least {fn.min_args}"
        else:
            want = f"{fn.min_args} to {fn.max_args}"
        raise ExpressionError(f"Function [{name}] needs {want} arguments, got {nargs}")
    return fn
