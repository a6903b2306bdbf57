"""Druid's expression grammar: a tokenizer and a precedence-climbing parser to a small AST.

Follows Druid's ``Expr.g4``: operators, tightest first, are unary ``!``/``-``; ``^`` (right
associative); ``*  /  %``; ``+  -``; ``<  <=  >  >=  ==  !=``; and ``&&``/``||``, which share ONE
level and associate left (so ``a || b && c`` is ``(a || b) && c``, as in Druid). Literals: longs
(``12``), doubles (anything with ``.`` or an exponent, ``NaN``, ``Infinity``), strings in single
quotes (``\\'``, ``\\n``, ``\\uXXXX`` escapes), ``null``, arrays ``[1, 2]`` and typed empty arrays
``<STRING>[]``. Identifiers are ``[A-Za-z_$][A-Za-z0-9_$]*`` or anything in double quotes.
Lambdas (``(x) -> x + 1``) are refused with a clear error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from common.errors import InvalidInput


class ExpressionError(InvalidInput, ValueError):
    """The expression is malformed or uses something not built; a 400 naming the problem."""

    error_code = "Invalid expression"
    error_class = "org.apache.druid.math.expr.ExpressionValidationException"


# ------------------------------------------------------------------------------------------
# AST


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any  # int | float | str | None | list


@dataclass(frozen=True, slots=True)
class Ident:
    name: str


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-" | "!"
    arg: Node


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # lower-cased
    args: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class ArrayLit:
    items: tuple[Node, ...]
    elem_type: str | None  # from <TYPE>[...] or None


Node = Literal | Ident | Unary | Binary | Call | ArrayLit


def columns_of(node: Node) -> set[str]:
    """Every identifier the expression reads."""
    if isinstance(node, Ident):
        return {node.name}
    if isinstance(node, Unary):
        return columns_of(node.arg)
    if isinstance(node, Binary):
        return columns_of(node.left) | columns_of(node.right)
    if isinstance(node, Call | ArrayLit):
        children = node.args if isinstance(node, Call) else node.items
        out: set[str] = set()
        for c in children:
            out |= columns_of(c)
        return out
    return set()


# ------------------------------------------------------------------------------------------
# tokenizer

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<qident>"(?:[^"\\]|\\.)*")
  | (?P<typed>(?:ARRAY|array)?<(?:STRING|LONG|DOUBLE|string|long|double)>(?=\s*\[))
  | (?P<ident>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<op>->|\|\||&&|==|!=|<=|>=|[<>+\-*/%^!(),\[\]])
    """,
    re.VERBOSE,
)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "'": "'", '"': '"', "\\": "\\", "/": "/"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number | string | ident | qident | typed | op | end
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
            tokens.append(Token("qident", raw, _unescape(raw[1:-1], pos + 1), pos))
        elif kind == "typed":
            tokens.append(Token("typed", raw, raw[raw.index("<") + 1 : -1].upper(), pos))
        elif kind in ("ident", "op"):
            tokens.append(Token(kind, raw, raw, pos))
        pos = m.end()
    tokens.append(Token("end", "", None, len(text)))
    return tokens


# ------------------------------------------------------------------------------------------
# parser

_LEVELS: list[tuple[str, ...]] = [
    ("&&", "||"),
    ("<", "<=", ">", ">=", "==", "!="),
    ("+", "-"),
    ("*", "/", "%"),
]

_NAMED_DOUBLES = {"NaN": float("nan"), "Infinity": float("inf")}


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at(self, text: str) -> bool:
        tok = self.peek()
        return tok.kind == "op" and tok.text == text

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.kind != "op" or tok.text != text:
            shown = tok.text or "end of expression"
            raise ExpressionError(f"expected {text!r} at position {tok.pos}, found {shown!r}")

    def parse(self) -> Node:
        node = self.binary(0)
        tok = self.peek()
        if tok.kind != "end":
            raise ExpressionError(f"unexpected {tok.text!r} at position {tok.pos}")
        return node

    def binary(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self.power()
        left = self.binary(level + 1)
        ops = _LEVELS[level]
        while (tok := self.peek()).kind == "op" and tok.text in ops:
            self.take()
            left = Binary(tok.text, left, self.binary(level + 1))
        return left

    def power(self) -> Node:
        base = self.unary()
        if self.at("^"):
            self.take()
            return Binary("^", base, self.power())  # right-associative
        return base

    def unary(self) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.text in ("-", "!"):
            self.take()
            inner = self.unary()
            if tok.text == "-" and isinstance(inner, Literal):
                if isinstance(inner.value, int | float) and not isinstance(inner.value, bool):
                    return Literal(-inner.value)
            return Unary(tok.text, inner)
        return self.atom()

    def atom(self) -> Node:
        tok = self.take()
        if tok.kind in ("number", "string"):
            return Literal(tok.value)
        if tok.kind == "qident":
            return Ident(tok.value)
        if tok.kind == "typed":
            return self.array(tok.value)
        if tok.kind == "op" and tok.text == "[":
            self.i -= 1
            return self.array(None)
        if tok.kind == "op" and tok.text == "(":
            inner = self.binary(0)
            if self.at(","):
                raise ExpressionError(
                    f"lambda expressions are not supported (at position {tok.pos})"
                )
            self.expect(")")
            if self.at("->"):
                raise ExpressionError(
                    f"lambda expressions are not supported (at position {tok.pos})"
                )
            return inner
        if tok.kind == "ident":
            if self.at("("):
                return self.call(tok)
            if tok.text == "null":
                return Literal(None)
            if tok.text in _NAMED_DOUBLES:
                return Literal(_NAMED_DOUBLES[tok.text])
            return Ident(tok.text)
        shown = tok.text or "end of expression"
        raise ExpressionError(f"unexpected {shown!r} at position {tok.pos}")

    def array(self, elem_type: str | None) -> Node:
        self.expect("[")
        items: list[Node] = []
        if not self.at("]"):
            items.append(self.binary(0))
            while self.at(","):
                self.take()
                items.append(self.binary(0))
        self.expect("]")
        return ArrayLit(tuple(items), elem_type)

    def call(self, name_tok: Token) -> Node:
        self.expect("(")
        args: list[Node] = []
        if not self.at(")"):
            args.append(self.binary(0))
            while self.at(","):
                self.take()
                args.append(self.binary(0))
        self.expect(")")
        return Call(name_tok.text.lower(), tuple(args), name_tok.pos)


def parse(text: str) -> Node:
    """The AST of ``text``; raises ``ExpressionError`` with the position of the problem."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("empty expression")
    return _Parser(text).parse()
