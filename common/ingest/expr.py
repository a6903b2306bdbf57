"""A small, safe subset of Druid's expression language, for ``transformSpec.transforms``.

A real tokenizer and a precedence-climbing parser turn the text into a tree, which is compiled to
nested Python closures over a row mapping; nothing is ever handed to ``eval``. Supported, with
Druid's semantics (SQL-compatible null handling, strict booleans returned as ``1``/``0``):

* literals: ``12`` (long), ``1.5`` / ``1e3`` (double), ``'text'`` (string, ``\\'`` escapes),
  ``null``; column references ``page`` or ``"a column"``; ``__time`` is the row time in ms;
* operators, loosest first: ``||``; ``&&``; ``==  !=  <  <=  >  >=``; ``+  -``; ``*  /  %``;
  ``^``; unary ``-`` and ``!``; parentheses. ``+`` with a string operand concatenates; long
  op long stays long (``/`` truncates toward zero); any null operand gives null;
* functions: ``concat``, ``lower``, ``upper``, ``if``, ``nvl``, ``isnull``, ``notnull``,
  ``strlen``, ``substring``, ``replace``, ``trim``, ``abs``, ``cast(x, 'LONG'|'DOUBLE'|'STRING')``.

``compile_expression(text)`` raises ``ExpressionError`` (a ``ValueError``) with the position of
the problem for anything else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, Any]
Evaluator = Callable[[Row], Any]


class ExpressionError(ValueError):
    """The expression text is not in the supported subset."""


# ------------------------------------------------------------------------------------------
# tokenizer

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<qident>"(?:[^"\\]|\\.)*")
  | (?P<ident>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<op>\|\||&&|==|!=|<=|>=|[<>+\-*/%^!(),])
    """,
    re.VERBOSE,
)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "'": "'", '"': '"', "\\": "\\"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number | string | ident | op | end
    text: str
    value: Any
    pos: int


def _unescape(body: str, pos: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            raise ExpressionError(f"unknown escape \\{nxt} in string at position {pos + i}")
    return "".join(out)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise ExpressionError(f"unexpected character {text[pos]!r} at position {pos}")
        kind = m.lastgroup or ""
        raw = m.group()
        if kind == "number":
            is_double = any(c in raw for c in ".eE")
            tokens.append(Token("number", raw, float(raw) if is_double else int(raw), pos))
        elif kind == "string":
            tokens.append(Token("string", raw, _unescape(raw[1:-1], pos + 1), pos))
        elif kind == "qident":
            tokens.append(Token("ident", raw, _unescape(raw[1:-1], pos + 1), pos))
        elif kind == "ident":
            tokens.append(Token("ident", raw, raw, pos))
        elif kind == "op":
            tokens.append(Token("op", raw, raw, pos))
        pos = m.end()
    tokens.append(Token("end", "", None, len(text)))
    return tokens


# ------------------------------------------------------------------------------------------
# value semantics


def as_bool(v: Any) -> bool:
    """Druid's ``Evals.asBoolean``: non-zero numbers, and the string ``true`` (any case)."""
    if v is None:
        return False
    if isinstance(v, str):
        return v.lower() == "true"
    if isinstance(v, list):
        return len(v) > 0
    return bool(v)


def _to_number(v: Any) -> int | float | None:
    if v is None or isinstance(v, bool):
        return None if v is None else int(v)
    if isinstance(v, int | float):
        return v
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return None
    return None


def _to_str(v: Any) -> str | None:
    return None if v is None else str(v)


def _arith(op: str, a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if op == "+" and (isinstance(a, str) or isinstance(b, str)):
        return f"{_to_str(a)}{_to_str(b)}"
    x, y = _to_number(a), _to_number(b)
    if x is None or y is None:
        return None
    both_long = isinstance(x, int) and isinstance(y, int)
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op == "/":
        if y == 0:
            return None if both_long else (math.nan if x == 0 else math.copysign(math.inf, x))
        if both_long:
            q = abs(int(x)) // abs(int(y))
            return q if (x >= 0) == (y >= 0) else -q
        return x / y
    if op == "%":
        if y == 0:
            return None if both_long else math.nan
        return math.fmod(x, y) if not both_long else int(math.fmod(x, y))
    if op == "^":
        r = float(x) ** float(y)
        return int(r) if both_long and y >= 0 else r
    raise ExpressionError(f"unknown operator {op}")


def _compare(op: str, a: Any, b: Any) -> int | None:
    if a is None or b is None:
        return None
    if isinstance(a, str) and isinstance(b, str):
        x: Any = a
        y: Any = b
    else:
        x, y = _to_number(a), _to_number(b)
        if x is None or y is None:
            x, y = _to_str(a), _to_str(b)
    if op == "==":
        r = x == y
    elif op == "!=":
        r = x != y
    elif op == "<":
        r = x < y
    elif op == "<=":
        r = x <= y
    elif op == ">":
        r = x > y
    else:
        r = x >= y
    return 1 if r else 0


# ------------------------------------------------------------------------------------------
# functions: name -> (min args, max args or None, builder from compiled args)


def _fn_concat(args: list[Evaluator]) -> Evaluator:
    def ev(row: Row) -> Any:
        parts = [_to_str(a(row)) for a in args]
        return None if any(p is None for p in parts) else "".join(parts)  # type: ignore[arg-type]

    return ev


def _unary_str(f: Callable[[str], Any]) -> Callable[[list[Evaluator]], Evaluator]:
    def build(args: list[Evaluator]) -> Evaluator:
        a = args[0]

        def ev(row: Row) -> Any:
            v = _to_str(a(row))
            return None if v is None else f(v)

        return ev

    return build


def _fn_if(args: list[Evaluator]) -> Evaluator:
    c, t, e = args
    return lambda row: t(row) if as_bool(c(row)) else e(row)


def _fn_nvl(args: list[Evaluator]) -> Evaluator:
    a, b = args

    def ev(row: Row) -> Any:
        v = a(row)
        return b(row) if v is None else v

    return ev


def _fn_substring(args: list[Evaluator]) -> Evaluator:
    s, i, n = args

    def ev(row: Row) -> Any:
        text, start, length = _to_str(s(row)), _to_number(i(row)), _to_number(n(row))
        if text is None or start is None:
            return None
        start = int(start)
        return text[start:] if length is None or length < 0 else text[start : start + int(length)]

    return ev


def _fn_replace(args: list[Evaluator]) -> Evaluator:
    s, old, new = args

    def ev(row: Row) -> Any:
        text, o, n = _to_str(s(row)), _to_str(old(row)), _to_str(new(row))
        return None if text is None or o is None or n is None else text.replace(o, n)

    return ev


def _fn_abs(args: list[Evaluator]) -> Evaluator:
    a = args[0]

    def ev(row: Row) -> Any:
        v = _to_number(a(row))
        return None if v is None else abs(v)

    return ev


def _fn_cast(args: list[Evaluator]) -> Evaluator:
    a, t = args
    # The target type must be a literal so a bad one is caught when the spec is submitted.
    target = t({})
    if not isinstance(target, str) or target.upper() not in ("LONG", "DOUBLE", "STRING"):
        raise ExpressionError("cast() takes a literal type: 'LONG', 'DOUBLE' or 'STRING'")
    kind = target.upper()

    def ev(row: Row) -> Any:
        v = a(row)
        if kind == "STRING":
            return _to_str(v)
        n = _to_number(v)
        if n is None:
            return None
        if kind == "LONG":
            return None if isinstance(n, float) and not math.isfinite(n) else int(n)
        return float(n)

    return ev


_FUNCTIONS: dict[str, tuple[int, int | None, Callable[[list[Evaluator]], Evaluator]]] = {
    "concat": (0, None, _fn_concat),
    "lower": (1, 1, _unary_str(str.lower)),
    "upper": (1, 1, _unary_str(str.upper)),
    "trim": (1, 1, _unary_str(str.strip)),
    "strlen": (1, 1, _unary_str(len)),
    "if": (3, 3, _fn_if),
    "nvl": (2, 2, _fn_nvl),
    "isnull": (1, 1, lambda a: lambda row: 1 if a[0](row) is None else 0),
    "notnull": (1, 1, lambda a: lambda row: 0 if a[0](row) is None else 1),
    "substring": (3, 3, _fn_substring),
    "replace": (3, 3, _fn_replace),
    "abs": (1, 1, _fn_abs),
    "cast": (2, 2, _fn_cast),
}

# ------------------------------------------------------------------------------------------
# parser: precedence climbing over binary operators, loosest first

_BINARY_LEVELS: list[tuple[str, ...]] = [
    ("||",),
    ("&&",),
    ("==", "!=", "<", "<=", ">", ">="),
    ("+", "-"),
    ("*", "/", "%"),
]


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled expression: ``evaluate(row)``, plus the columns it reads."""

    text: str
    evaluate: Evaluator
    columns: frozenset[str]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.columns: set[str] = set()

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.kind != "op" or tok.text != text:
            shown = tok.text or "end of expression"
            raise ExpressionError(f"expected {text!r} at position {tok.pos}, found {shown!r}")

    def parse(self) -> Evaluator:
        ev = self.binary(0)
        tok = self.peek()
        if tok.kind != "end":
            raise ExpressionError(f"unexpected {tok.text!r} at position {tok.pos}")
        return ev

    def binary(self, level: int) -> Evaluator:
        if level == len(_BINARY_LEVELS):
            return self.power()
        left = self.binary(level + 1)
        ops = _BINARY_LEVELS[level]
        while (tok := self.peek()).kind == "op" and tok.text in ops:
            self.take()
            right = self.binary(level + 1)
            left = _binary(tok.text, left, right)
        return left

    def power(self) -> Evaluator:
        base = self.unary()
        if (tok := self.peek()).kind == "op" and tok.text == "^":
            self.take()
            exponent = self.power()  # right-associative
            return _binary("^", base, exponent)
        return base

    def unary(self) -> Evaluator:
        tok = self.peek()
        if tok.kind == "op" and tok.text == "-":
            self.take()
            inner = self.unary()

            def neg(row: Row) -> Any:
                v = _to_number(inner(row))
                return None if v is None else -v

            return neg
        if tok.kind == "op" and tok.text == "!":
            self.take()
            inner = self.unary()

            def not_(row: Row) -> Any:
                v = inner(row)
                return None if v is None else (0 if as_bool(v) else 1)

            return not_
        return self.atom()

    def atom(self) -> Evaluator:
        tok = self.take()
        if tok.kind in ("number", "string"):
            const = tok.value
            return lambda row: const
        if tok.kind == "op" and tok.text == "(":
            inner = self.binary(0)
            self.expect(")")
            return inner
        if tok.kind == "ident":
            nxt = self.peek()
            if nxt.kind == "op" and nxt.text == "(" and tok.text == tok.value:
                return self.call(tok)
            if tok.text == "null":
                return lambda row: None
            name = tok.value
            self.columns.add(name)
            return lambda row: row.get(name)
        shown = tok.text or "end of expression"
        raise ExpressionError(f"unexpected {shown!r} at position {tok.pos}")

    def call(self, name_tok: Token) -> Evaluator:
        name = name_tok.text.lower()
        if name not in _FUNCTIONS:
            known = ", ".join(sorted(_FUNCTIONS))
            raise ExpressionError(
                f"unsupported function {name_tok.text}() at position {name_tok.pos} "
                f"(supported: {known})"
            )
        self.expect("(")
        args: list[Evaluator] = []
        if not (self.peek().kind == "op" and self.peek().text == ")"):
            args.append(self.binary(0))
            while self.peek().kind == "op" and self.peek().text == ",":
                self.take()
                args.append(self.binary(0))
        self.expect(")")
        lo, hi, build = _FUNCTIONS[name]
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = str(lo) if lo == hi else f"{lo}..{hi if hi is not None else 'n'}"
            raise ExpressionError(f"{name}() takes {want} arguments, got {len(args)}")
        return build(args)


def _binary(op: str, left: Evaluator, right: Evaluator) -> Evaluator:
    if op == "&&":

        def and_(row: Row) -> Any:
            return 1 if as_bool(left(row)) and as_bool(right(row)) else 0

        return and_
    if op == "||":

        def or_(row: Row) -> Any:
            return 1 if as_bool(left(row)) or as_bool(right(row)) else 0

        return or_
    if op in ("==", "!=", "<", "<=", ">", ">="):
        return lambda row: _compare(op, left(row), right(row))
    return lambda row: _arith(op, left(row), right(row))


def compile_expression(text: str) -> Compiled:
    """Parse ``text`` once; the result evaluates a row mapping without further parsing."""
    if not text or not text.strip():
        raise ExpressionError("empty expression")
    p = _Parser(text)
    return Compiled(text=text, evaluate=p.parse(), columns=frozenset(p.columns))
