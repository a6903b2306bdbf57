"""Row implementations of Druid's string expression functions."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from common.expr.parse import ExpressionError
from common.expr.registry import register
from common.expr.values import to_long, to_str

# ------------------------------------------------------------------------------------------
# strings


def _strs(a: list[Any]) -> list[str] | None:
    out = [to_str(v) for v in a]
    return None if any(v is None for v in out) else out  # type: ignore[return-value]


def _concat(a: list[Any]) -> Any:
    parts = _strs(a)
    return None if parts is None else "".join(parts)


def _str1(f: Any) -> Any:
    def row(a: list[Any]) -> Any:
        s = to_str(a[0])
        return None if s is None else f(s)

    return row


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def _substring(a: list[Any]) -> Any:
    s, i, n = to_str(a[0]), to_long(a[1]), to_long(a[2])
    if s is None or i is None:
        return None
    i = max(i, 0)
    if i >= len(s):
        return None
    return s[i:] if n is None or n < 0 else s[i : i + n]


def _left_right(right: bool) -> Any:
    def row(a: list[Any]) -> Any:
        s, n = to_str(a[0]), to_long(a[1])
        if s is None or n is None:
            return None
        if n < 0:
            raise ExpressionError(f"{'right' if right else 'left'}() length must be >= 0")
        return (s[len(s) - n :] if n else "") if right else s[:n]

    return row


def _strpos(a: list[Any]) -> Any:
    s, needle = to_str(a[0]), to_str(a[1])
    start = 0 if len(a) < 3 else to_long(a[2])
    if s is None or needle is None or start is None:
        return None
    return s.find(needle, max(start, 0))


def _trim(kind: str) -> Any:
    def row(a: list[Any]) -> Any:
        s = to_str(a[0])
        chars = " " if len(a) < 2 else to_str(a[1])
        if s is None or chars is None:
            return None
        if kind == "both":
            return s.strip(chars)
        return s.lstrip(chars) if kind == "left" else s.rstrip(chars)

    return row


def pad(s: str, n: int, chars: str, left: bool) -> str:
    if n <= 0:
        return ""
    if n <= len(s):
        return s[:n]
    if not chars:
        return s
    fill = (chars * ((n - len(s)) // len(chars) + 1))[: n - len(s)]
    return fill + s if left else s + fill


def _pad(left: bool) -> Any:
    def row(a: list[Any]) -> Any:
        s, n, chars = to_str(a[0]), to_long(a[1]), to_str(a[2])
        if s is None or n is None or chars is None:
            return None
        return pad(s, n, chars, left)

    return row


def _replace(a: list[Any]) -> Any:
    p = _strs(a)
    return None if p is None else p[0].replace(p[1], p[2])


def _repeat(a: list[Any]) -> Any:
    s, n = to_str(a[0]), to_long(a[1])
    return None if s is None or n is None else s * max(n, 0)


@lru_cache(maxsize=256)
def compile_regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ExpressionError(f"invalid regular expression [{pattern}]: {exc}") from exc


def like_regex(pattern: str, escape: str | None) -> str:
    """SQL LIKE pattern -> an anchored regex (``%`` any run, ``_`` any one character)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if escape and c == escape and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return "^" + "".join(out) + "$"


def _check_pattern(pos: int) -> Any:
    def check(a: list[Any]) -> None:
        if not isinstance(a[pos], str):
            raise ExpressionError("the pattern must be a string literal")
        compile_regex(a[pos])

    return check


def _check_like(a: list[Any]) -> None:
    if not isinstance(a[1], str):
        raise ExpressionError("like() pattern must be a string literal")
    if len(a) > 2 and (not isinstance(a[2], str) or len(a[2]) != 1):
        raise ExpressionError("like() escape must be a one-character string literal")


def _like(a: list[Any]) -> Any:
    s = to_str(a[0])
    if s is None:
        return 0  # a true null matches no pattern (Druid, SQL-compatible mode)
    rx = compile_regex(like_regex(a[1], a[2] if len(a) > 2 else None))
    return 1 if rx.match(s) else 0


def _regexp_extract(a: list[Any]) -> Any:
    s = to_str(a[0])
    idx = 0 if len(a) < 3 else to_long(a[2])
    if s is None or idx is None:
        return None
    m = compile_regex(a[1]).search(s)
    if m is None:
        return None
    if idx > (m.re.groups or 0):
        raise ExpressionError(f"regexp_extract() index {idx} is past the pattern's groups")
    return m.group(idx)


def _regexp_like(a: list[Any]) -> Any:
    s = to_str(a[0])
    return 0 if s is None else (1 if compile_regex(a[1]).search(s) else 0)


def java_replacement(rep: str) -> str:
    """Java's ``$1``/``\\$`` replacement syntax in Python's ``re`` syntax."""
    out, i = [], 0
    while i < len(rep):
        c = rep[i]
        if c == "\\" and i + 1 < len(rep):
            out.append(rep[i + 1].replace("\\", "\\\\"))
            i += 2
        elif c == "$" and i + 1 < len(rep) and rep[i + 1].isdigit():
            j = i + 1
            while j < len(rep) and rep[j].isdigit():
                j += 1
            out.append(f"\\g<{rep[i + 1 : j]}>")
            i = j
        else:
            out.append("\\\\" if c == "\\" else c)
            i += 1
    return "".join(out)


def _regexp_replace(a: list[Any]) -> Any:
    s, rep = to_str(a[0]), to_str(a[2])
    if s is None or rep is None:
        return None
    return compile_regex(a[1]).sub(java_replacement(rep), s)


def _contains(ignore_case: bool) -> Any:
    def row(a: list[Any]) -> Any:
        s = to_str(a[0])
        if s is None:
            return 0  # as regexp_like: a true null contains nothing
        needle = str(a[1])
        return 1 if (needle.lower() in s.lower() if ignore_case else needle in s) else 0

    return row


def _check_literal_str(a: list[Any]) -> None:
    if not isinstance(a[1], str):
        raise ExpressionError("the search string must be a string literal")


def _parse_long(a: list[Any]) -> Any:
    s = to_str(a[0])
    radix = 10 if len(a) < 2 else to_long(a[1])
    if s is None or radix is None:
        return None
    text = s[2:] if radix == 16 and s[:2].lower() == "0x" else s
    try:
        return int(text, radix)
    except ValueError:
        return None


register("concat", 0, None, _concat, out="STRING")
register("lower", 1, 1, _str1(str.lower), out="STRING")
register("upper", 1, 1, _str1(str.upper), out="STRING")
register("reverse", 1, 1, _str1(lambda s: s[::-1]), out="STRING")
register("strlen", 1, 1, _str1(utf16_len), out="LONG")
register("substring", 3, 3, _substring, out="STRING")
register("left", 2, 2, _left_right(False), out="STRING")
register("right", 2, 2, _left_right(True), out="STRING")
register("strpos", 2, 3, _strpos, out="LONG")
register("trim", 1, 2, _trim("both"), out="STRING")
register("ltrim", 1, 2, _trim("left"), out="STRING")
register("rtrim", 1, 2, _trim("right"), out="STRING")
register("lpad", 3, 3, _pad(True), out="STRING")
register("rpad", 3, 3, _pad(False), out="STRING")
register("replace", 3, 3, _replace, out="STRING")
register("repeat", 2, 2, _repeat, out="STRING")
register("like", 2, 3, _like, out="LONG", literals=(1, 2), check=_check_like)
register(
    "regexp_extract", 2, 3, _regexp_extract, out="STRING", literals=(1,), check=_check_pattern(1)
)
register("regexp_like", 2, 2, _regexp_like, out="LONG", literals=(1,), check=_check_pattern(1))
register(
    "regexp_replace", 3, 3, _regexp_replace, out="STRING", literals=(1,), check=_check_pattern(1)
)
register(
    "contains_string", 2, 2, _contains(False), out="LONG", literals=(1,), check=_check_literal_str
)
register(
    "icontains_string", 2, 2, _contains(True), out="LONG", literals=(1,), check=_check_literal_str
)
register("parse_long", 1, 2, _parse_long, out="LONG")
