"""Row implementations of Druid's formatting, IP address and SQL-predicate expression functions:
``human_readable_*`` (``HumanReadableBytes.format``), ``format`` (Java's ``String.format`` for
the ``%s %d %f %x %e %%`` conversions), ``decode_base64_utf8``, ``ipv4_match`` / ``ipv4_parse`` /
``ipv4_stringify`` / ``ipv6_match`` (``IPv4AddressExprUtils``), and the null-safe predicates
Druid's SQL planner emits for ``IS [NOT] TRUE/FALSE`` and ``IS [NOT] DISTINCT FROM``."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from common.expr.parse import ExpressionError
from common.expr.registry import register
from common.expr.values import compare, java_double, to_long, to_str, truth

# ---- human-readable sizes (HumanReadableBytes.format)


def java_fixed(x: float, digits: int) -> str:
    """Java's ``%.<digits>f``: the shortest decimal of ``x`` rounded half-up."""
    q = Decimal(1).scaleb(-digits)
    return str(Decimal(repr(float(x))).quantize(q, rounding=ROUND_HALF_UP))


def _binary(n: int, digits: int, suffix: str) -> str:
    if -1024 < n < 1024:
        return f"{n} {suffix}"
    units = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
    index = (abs(n).bit_length() - 1) // 10
    return f"{java_fixed(n / (1 << (index * 10)), digits)} {units[index]}{suffix}"


def _decimal(n: int, digits: int, suffix: str) -> str:
    if -1000 < n < 1000:
        return f"{n} {suffix}"
    index = 0
    while n <= -1_000_000 or n >= 1_000_000:
        n = int(n / 1000)  # Java's long division truncates toward zero
        index += 1
    return f"{java_fixed(n / 1000.0, digits)} {'KMGTPE'[index]}{suffix}"


def _human(kind: str) -> Any:
    def row(a: list[Any]) -> Any:
        n = to_long(a[0])
        digits = to_long(a[1]) if len(a) > 1 else 2
        if n is None:
            return None
        if digits is None or not 0 <= digits <= 3:
            raise ExpressionError(f"precision [{digits}] must be in the range of [0,3]")
        if kind == "binary":
            return _binary(n, digits, "B")
        if kind == "decimal_byte":
            return _decimal(n, digits, "B")
        return _decimal(n, digits, "").strip()

    return row


def _check_precision(a: list[Any]) -> None:
    if len(a) > 1 and a[1] is not None and not (isinstance(a[1], int) and 0 <= a[1] <= 3):
        raise ExpressionError(f"precision [{a[1]}] must be in the range of [0,3]")


# ---- format (String.format)

_SPEC = re.compile(r"%(?:(\d+)\$)?([-#+ 0,(]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def _format(a: list[Any]) -> Any:
    pattern = to_str(a[0])
    if pattern is None:
        return None
    args = a[1:]
    pos = 0

    def one(m: re.Match[str]) -> str:
        nonlocal pos
        index, flags, width, prec, conv = m.groups()
        if conv == "%":
            return "%"
        if conv == "n":
            return "\n"
        if index is not None:
            value = args[int(index) - 1] if 0 < int(index) <= len(args) else None
        else:
            if pos >= len(args):
                raise ExpressionError(f"format(): missing argument for [{m.group(0)}]")
            value = args[pos]
            pos += 1
        text = _convert(value, flags, prec, conv, m.group(0))
        if width:
            w = int(width)
            text = text.ljust(w) if "-" in flags else text.rjust(w, "0" if "0" in flags else " ")
        return text

    return _SPEC.sub(one, pattern)


def _convert(value: Any, flags: str, prec: str | None, conv: str, spec: str) -> str:
    if conv in "sS":
        text = (
            "null"
            if value is None
            else (java_double(value) if isinstance(value, float) else str(to_str(value)))
        )
        if prec is not None:
            text = text[: int(prec)]
        return text.upper() if conv == "S" else text
    if value is None:
        return "null"
    if conv == "d" and isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}" if "," in flags else str(value)
    if conv in "xX" and isinstance(value, int):
        text = format(value if value >= 0 else value + 2**64, "x")
        return text.upper() if conv == "X" else text
    if conv in "feE" and isinstance(value, int | float) and not isinstance(value, bool):
        digits = 6 if prec is None else int(prec)
        if conv == "f":
            return java_fixed(float(value), digits)
        return format(float(value), f".{digits}{conv}")
    raise ExpressionError(f"format(): [{spec}] cannot format the value [{value}]")


# ---- base64


def _decode_base64_utf8(a: list[Any]) -> Any:
    s = to_str(a[0])
    if s is None:
        return None
    try:
        return base64.b64decode(s, validate=False).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError) as exc:
        raise ExpressionError(f"decode_base64_utf8(): [{s}] is not base64") from exc


# ---- IP addresses (IPv4AddressExprUtils, IPv6AddressExprUtils)

_IPV4 = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")


def _ipv4_long(v: Any) -> int | None:
    """An IPv4 address as its 32-bit integer, from dotted-decimal text or an integer in range."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if 0 <= v <= 0xFFFFFFFF else None
    s = to_str(v)
    if s is None:
        return None
    m = _IPV4.match(s)
    if m is None or any(int(p) > 255 or (len(p) > 1 and p[0] == "0") for p in m.groups()):
        return None
    return int(ipaddress.IPv4Address(s))


@lru_cache(maxsize=256)
def _ipv4_net(subnet: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(subnet, strict=False)
    except ValueError as exc:
        raise ExpressionError(f"ipv4_match(): subnet arg has an invalid format: {subnet}") from exc


@lru_cache(maxsize=256)
def _ipv6_net(subnet: str) -> ipaddress.IPv6Network:
    try:
        return ipaddress.IPv6Network(subnet, strict=False)
    except ValueError as exc:
        raise ExpressionError(f"ipv6_match(): subnet arg has an invalid format: {subnet}") from exc


def _check_subnet(net: Any) -> Any:
    def check(a: list[Any]) -> None:
        if a[1] is not None:
            net(str(a[1]))

    return check


def _ipv4_match(a: list[Any]) -> Any:
    n = _ipv4_long(a[0])
    if n is None:
        return 0
    return 1 if ipaddress.IPv4Address(n) in _ipv4_net(str(a[1])) else 0


def _ipv4_parse(a: list[Any]) -> Any:
    return _ipv4_long(a[0])


def _ipv4_stringify(a: list[Any]) -> Any:
    n = _ipv4_long(a[0])
    return None if n is None else str(ipaddress.IPv4Address(n))


def _ipv6_match(a: list[Any]) -> Any:
    s = to_str(a[0])
    if s is None:
        return 0
    try:
        addr = ipaddress.IPv6Address(s)
    except ValueError:
        return 0
    return 1 if addr in _ipv6_net(str(a[1])) else 0


# ---- SQL predicates


def _distinct(a: list[Any]) -> int:
    x, y = a
    if x is None or y is None:
        return 0 if x is None and y is None else 1
    return 1 if compare("!=", x, y) else 0


register("human_readable_binary_byte_format", 1, 2, _human("binary"), out="STRING",
         literals=(1,), check=_check_precision)  # fmt: skip
register("human_readable_decimal_byte_format", 1, 2, _human("decimal_byte"), out="STRING",
         literals=(1,), check=_check_precision)  # fmt: skip
register("human_readable_decimal_format", 1, 2, _human("decimal"), out="STRING",
         literals=(1,), check=_check_precision)  # fmt: skip
register("format", 1, None, _format, out="STRING")
register("decode_base64_utf8", 1, 1, _decode_base64_utf8, out="STRING")
register("ipv4_match", 2, 2, _ipv4_match, out="LONG", literals=(1,), check=_check_subnet(_ipv4_net))
register("ipv4_parse", 1, 1, _ipv4_parse, out="LONG")
register("ipv4_stringify", 1, 1, _ipv4_stringify, out="STRING")
register("ipv6_match", 2, 2, _ipv6_match, out="LONG", literals=(1,), check=_check_subnet(_ipv6_net))
register("istrue", 1, 1, lambda a: 1 if truth(a[0]) is True else 0, out="LONG")
register("isfalse", 1, 1, lambda a: 1 if truth(a[0]) is False else 0, out="LONG")
register("nottrue", 1, 1, lambda a: 0 if truth(a[0]) is True else 1, out="LONG")
register("notfalse", 1, 1, lambda a: 0 if truth(a[0]) is False else 1, out="LONG")
register("isdistinctfrom", 2, 2, _distinct, out="LONG")
register("notdistinctfrom", 2, 2, lambda a: 1 - _distinct(a), out="LONG")
