"""Druid-style syntax errors for SQL text: what sqlglot lets through, and how a failure reads.

sqlglot is a forgiving parser: it drops a stray comma (``SELECT a,, FROM t``), takes a reserved
word as an alias (``FROM t GROUP``) and accepts empty clauses (``GROUP BY`` at the end). Druid's
parser (Calcite) rejects all of these. ``check_tokens`` walks the token stream first and refuses
them; ``parse_error`` turns a sqlglot failure into Druid's message. Either way the error is
Druid's ``Received an unexpected token [...] (line [L], column [C])`` with the same ``context``
keys Druid sends (``line``, ``column``, ``token``), and no parser internals leak out.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError
from sqlglot.tokenizer_core import Token, TokenType

from common.errors import SqlParseError

_BASE = Dialect.get_or_raise(None)  # sqlglot's default dialect

# Calcite functions sqlglot would read as something else: ``DIV(x, y)`` (sqlglot's ``x DIV y``
# keyword) and ``TIMESTAMPDIFF(unit, t1, t2)`` (sqlglot's argument order is BigQuery's) are kept
# as plain calls for the planner. Druid's array aggregates take a size argument sqlglot's builders
# drop (ARRAY_AGG(x, 1000)) or refuse (ARRAY_CONCAT_AGG(x, 1000)): they parse as plain calls too,
# DISTINCT kept. So do the aggregates sqlglot would rename (VAR_SAMP is its VARIANCE) or whose
# Druid arguments it refuses (ANY_VALUE(x, maxBytes), APPROX_QUANTILE(x, p, resolution)): the
# planner sees each as written.
_ARRAY_AGGS = ("ARRAY_AGG", "ARRAY_CONCAT_AGG", "STRING_AGG", "LISTAGG", "GROUP_CONCAT")
_STATS_AGGS = ("VAR_POP", "VAR_SAMP", "VARIANCE", "STDDEV", "STDDEV_POP", "STDDEV_SAMP")
_PLAIN_CALLS = ("TIMESTAMPDIFF", *_ARRAY_AGGS, *_STATS_AGGS, "ANY_VALUE", "APPROX_QUANTILE")


class _Tokenizer(_BASE.tokenizer_class):  # type: ignore[name-defined,misc]
    KEYWORDS = {k: v for k, v in _BASE.tokenizer_class.KEYWORDS.items() if k != "DIV"}


def _position(self: Any) -> exp.StrPosition:
    """Calcite's ``POSITION(needle IN haystack [FROM start])``."""
    args = self._parse_csv(self._parse_bitwise)
    if self._match(TokenType.IN):
        haystack = self._parse_bitwise()
        start = self._parse_bitwise() if self._match(TokenType.FROM) else None
        return self.expression(  # type: ignore[no-any-return]
            exp.StrPosition(this=haystack, substr=args[0] if args else None, position=start)
        )
    return self._parse_position()  # type: ignore[no-any-return]


class _Parser(_BASE.parser_class):  # type: ignore[name-defined,misc]
    FUNCTIONS = {k: v for k, v in _BASE.parser_class.FUNCTIONS.items() if k not in _PLAIN_CALLS}
    FUNCTION_PARSERS = {
        **{k: v for k, v in _BASE.parser_class.FUNCTION_PARSERS.items() if k not in _ARRAY_AGGS},
        "POSITION": _position,
    }


class KdruidDialect(Dialect):
    """sqlglot's default dialect, reading the few Calcite forms it would misread as Calcite."""

    Tokenizer = _Tokenizer
    Parser = _Parser


DIALECT = KdruidDialect()

# Calcite's reserved words that sqlglot reads as plain names (they must be quoted in Druid).
_RESERVED = frozenset(
    "BY EXCEPT FETCH FROM GROUP HAVING INTERSECT JOIN LIMIT NATURAL OFFSET ON ORDER SELECT "
    "UNION USING WHERE WINDOW".split()
)
_CLAUSE = frozenset(
    {
        TokenType.FROM,
        TokenType.WHERE,
        TokenType.GROUP_BY,
        TokenType.ORDER_BY,
        TokenType.HAVING,
        TokenType.LIMIT,
        TokenType.OFFSET,
        TokenType.UNION,
        TokenType.SEMICOLON,
    }
)
# After these an expression (or a name) must follow.
_NEEDS_OPERAND = frozenset(
    {
        TokenType.COMMA,
        TokenType.WHERE,
        TokenType.GROUP_BY,
        TokenType.ORDER_BY,
        TokenType.HAVING,
        TokenType.ON,
        TokenType.FROM,
        TokenType.SELECT,
        TokenType.DISTINCT,
    }
)


class Source:
    """The SQL text the user sent, and where the parsed part starts in it."""

    def __init__(self, text: str, start: int) -> None:
        self.text = text
        self.start = start

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of ``offset`` in the parsed part, counted in the whole text."""
        at = self.start + offset
        line = self.text.count("\n", 0, at) + 1
        return line, at - (self.text.rfind("\n", 0, at) + 1) + 1

    def unexpected(self, token: str, offset: int | None) -> SqlParseError:
        if offset is None:
            offset = len(self.text) - self.start
        line, col = self.position(offset)
        return unexpected_token(token, line, col)


def unexpected_token(token: str, line: int, col: int) -> SqlParseError:
    return SqlParseError(
        f"Received an unexpected token [{token}] (line [{line}], column [{col}])",
        line=str(line),
        column=str(col),
        token=token,
    )


def tokenize(src: Source, body: str) -> list[Token]:
    try:
        return list(DIALECT.tokenize(body))
    except Exception as exc:  # sqlglot raises TokenError (and ValueError on odd escapes)
        raise lexical_error(src, body) from exc


def lexical_error(src: Source, body: str) -> SqlParseError:
    """Calcite's ``Lexical error``: an unterminated quote, pointed at where it opens."""
    quote, at = None, 0
    i = 0
    while i < len(body):
        ch = body[i]
        if quote is None:
            if ch in "'\"":
                quote, at = ch, i
            elif body.startswith("--", i):
                nl = body.find("\n", i)
                i = len(body) if nl < 0 else nl
            elif body.startswith("/*", i):
                end = body.find("*/", i + 2)
                if end < 0:
                    quote, at = "/*", i
                    break
                i = end + 1
        elif ch == quote:
            if body[i + 1 : i + 2] == quote:
                i += 1
            else:
                quote = None
        i += 1
    line, col = src.position(at)
    what = "comment" if quote == "/*" else "string or quoted name"
    return SqlParseError(
        f"Lexical error at line [{line}], column [{col}]: unterminated {what}",
        line=str(line),
        column=str(col),
    )


def check_tokens(src: Source, tokens: list[Token]) -> None:
    """Refuse token sequences Calcite rejects and sqlglot would silently accept."""
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.token_type == TokenType.VAR and tok.text.upper() in _RESERVED:
            raise src.unexpected(tok.text, tok.start)
        prev = tokens[i - 1] if i else None
        distinct_from = tok.token_type == TokenType.DISTINCT and (
            prev is not None and prev.token_type in (TokenType.IS, TokenType.NOT)
        )  # a IS [NOT] DISTINCT FROM b
        if (
            tok.token_type in _NEEDS_OPERAND
            and tok.token_type != TokenType.SELECT
            and not distinct_from
        ):
            if nxt is None or nxt.token_type in _CLAUSE or nxt.token_type == TokenType.R_PAREN:
                raise src.unexpected(_text(nxt), nxt.start if nxt else None)
            if nxt.token_type == TokenType.COMMA:
                raise src.unexpected(nxt.text, nxt.start)
        if tok.token_type == TokenType.SELECT and (
            nxt is None or nxt.token_type in _CLAUSE or nxt.token_type == TokenType.COMMA
        ):
            raise src.unexpected(_text(nxt), nxt.start if nxt else None)
        if tok.token_type == TokenType.L_PAREN and nxt is not None:
            if nxt.token_type == TokenType.COMMA:
                raise src.unexpected(nxt.text, nxt.start)
            if nxt.token_type == TokenType.R_PAREN and (
                prev is None or prev.token_type in {TokenType.IN, TokenType.FROM, TokenType.SELECT}
            ):
                raise src.unexpected(nxt.text, nxt.start)
        if tok.token_type in (TokenType.LIMIT, TokenType.OFFSET) and (
            nxt is None or nxt.token_type in _CLAUSE
        ):
            raise src.unexpected(_text(nxt), nxt.start if nxt else None)


def _text(tok: Token | None) -> str:
    return "<EOF>" if tok is None else tok.text


def parse_error(src: Source, exc: ParseError, tokens: list[Token]) -> SqlParseError:
    """sqlglot's failure, as Druid words it: the unexpected token and where it is."""
    errors = getattr(exc, "errors", None) or []
    first = errors[0] if errors else {}
    line, col = first.get("line"), first.get("col")
    description = str(first.get("description") or "")
    if not isinstance(line, int) or not isinstance(col, int):
        return SqlParseError("Incorrect syntax in the SQL text")
    # sqlglot points at the end of the highlighted token; find that token.
    at = None
    for i, tok in enumerate(tokens):
        if tok.line == line and tok.col == col:
            at = i
            break
    if at is None:
        return SqlParseError(f"Incorrect syntax near line [{line}], column [{col}]")
    tok = tokens[at]
    missing = description.startswith(("Required keyword", "Expected table name"))
    if missing and at + 1 >= len(tokens):
        return src.unexpected(f"{tok.text} <EOF>", tok.start)
    return src.unexpected(tok.text, tok.start)
