"""Aggregation over tables the broker holds (derived tables, constant rows, system tables).

Druid computes these on its broker too. The grouping itself is pyarrow's hash aggregation
(``execute._system_base``), which groups and aggregates columns; what SQL writes over
expressions is first turned into computed columns, evaluated vectorised after WHERE:

- ``GROUP BY UPPER(page)``, ``GROUP BY FLOOR(__time TO DAY)``: the key is a computed column;
- ``SUM(CASE WHEN c > 5 THEN 1 ELSE 0 END)``, ``MAX(a * 2)``: the argument is one;
- ``agg(x) FILTER (WHERE cond)`` is ``agg(CASE WHEN cond THEN x END)`` (``COUNT(*)`` counts
  ``CASE WHEN cond THEN 1 END``), which has SQL's meaning: aggregates skip nulls, and SUM, MIN,
  MAX, AVG of no value are null.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from common.errors import PlanValidationError
from common.query.sql.functions import Unsupported

COMPUTED_TYPE = "COMPUTED"  # the planner's type for a computed column (arrow gives the real one)


class Computed:
    """The computed columns of one plan: name -> expression over the table's columns."""

    def __init__(self, types: dict[str, str]) -> None:
        self.types = types
        self.columns: dict[str, exp.Expression] = {}

    def column(self, e: exp.Expression) -> exp.Column:
        for name, known in self.columns.items():
            if known == e:
                return exp.column(name)
        for c in e.find_all(exp.Column):
            if c.name not in self.types:
                raise PlanValidationError(f"Column '{c.name}' not found in any table")
        name = f"$c{len(self.columns)}"
        self.columns[name] = e.copy()
        self.types[name] = COMPUTED_TYPE
        return exp.column(name)

    def aggregate(self, node: exp.Expression) -> exp.Expression:
        """``node`` (an aggregate call, maybe with FILTER) with columns for its argument."""
        cond = None
        if isinstance(node, exp.Filter):
            cond = node.expression.this
            node = node.this
        node = node.copy()
        star, slot, arg = _argument(node)
        if star:
            if cond is None:
                return node
            when = exp.Case(ifs=[exp.If(this=cond.copy(), true=exp.Literal.number(1))])
            return exp.Count(this=self.column(when))
        if slot is None or arg is None:
            raise Unsupported(f"Aggregate [{node.sql()}] over a broker-side table is not supported")
        if cond is not None:
            arg = exp.Case(ifs=[exp.If(this=cond.copy(), true=arg.copy())])
        if not isinstance(arg, exp.Column):
            slot(self.column(arg))
        return node


Setter = Callable[[exp.Expression], None]


def _argument(node: exp.Expression) -> tuple[bool, Setter | None, exp.Expression | None]:
    """(is COUNT(*), a setter for the aggregate's one argument, that argument)."""
    if isinstance(node, exp.Count):
        arg = node.this
        if arg is None or isinstance(arg, exp.Star):
            return True, None, None
        if isinstance(arg, exp.Distinct):
            if len(arg.expressions) != 1:
                return False, None, None
            d = arg
            return False, (lambda new: d.set("expressions", [new])), d.expressions[0]
        return False, (lambda new: node.set("this", new)), arg
    if isinstance(node, exp.Anonymous):
        if len(node.expressions) != 1:
            return False, None, None
        return False, (lambda new: node.set("expressions", [new])), node.expressions[0]
    arg = node.this
    if arg is None or isinstance(arg, exp.Distinct):
        return False, None, None
    return False, (lambda new: node.set("this", new)), arg
