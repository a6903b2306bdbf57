"""Malformed SQL is Druid's 400 ``invalidInput`` with ``Received an unexpected token [...]``,
positioned as Druid positions it; sqlglot's leniency (stray commas, reserved words as names,
empty clauses) is refused, and no parser internals ever reach the message."""

from __future__ import annotations

import random
import re

import pytest

from common.errors import SqlParseError
from common.query.sql.parse import parse_sql

MESSAGE = re.compile(
    r"^(Received an unexpected token \[.+\] \(line \[\d+\], column \[\d+\]\)"
    r"|Lexical error at line \[\d+\], column \[\d+\]: .+"
    r"|Incorrect syntax.*)$"
)
LEAKS = ("sqlglot", "<class", "Token(", "token_type", "Required keyword", "SENTINEL", "\x1b")

MALFORMED = [
    "SELECT channel,, FROM wikipedia",
    "SELECT channel, FROM wikipedia",
    "SELECT , channel FROM wikipedia",
    "SELECT FROM wikipedia",
    "SELECT",
    "SELECT channel FROM",
    "SELECT channel FROM wikipedia WHERE",
    "SELECT channel FROM wikipedia WHERE channel = = 'a'",
    "SELECT channel FROM wikipedia GROUP",
    "SELECT channel FROM wikipedia GROUP BY",
    "SELECT channel FROM wikipedia GROUP BY channel,",
    "SELECT channel FROM wikipedia ORDER BY",
    "SELECT channel FROM wikipedia HAVING",
    "SELECT channel FROM wikipedia LIMIT",
    "SELECT channel FROM wikipedia LIMIT 1 OFFSET",
    "SELECT channel FROM wikipedia WHERE channel IN ()",
    "SELECT channel FROM wikipedia WHERE channel IN ('a',)",
    "SELECT COUNT( FROM wikipedia",
    "SELECT (channel FROM wikipedia",
    "SELECT channel) FROM wikipedia",
    "SELECT a b c FROM wikipedia",
    "SELEC channel FROM wikipedia",
    "SELECT 'abc FROM wikipedia",
    'SELECT "abc FROM wikipedia',
    "SELECT channel FROM wikipedia /* open",
    "SELECT 1 +",
    "SELECT CAST(channel) FROM wikipedia",
    "SELECT * FROM wikipedia JOIN",
    "SELECT channel FROM wikipedia t1 t2",
    "SELECT group FROM wikipedia",
    "SELECT channel AS order FROM wikipedia",
    "SELECT f(,) FROM wikipedia",
    "EXPLAIN PLAN FOR SELECT channel,, FROM wikipedia",
]


def error_of(text: str) -> SqlParseError:
    with pytest.raises(SqlParseError) as info:
        parse_sql(text)
    return info.value


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_sql_is_a_druid_parse_error(text: str) -> None:
    err = error_of(text)
    assert MESSAGE.match(err.message), err.message
    assert not any(leak in err.message for leak in LEAKS), err.message
    body = err.to_druid_json("h")
    assert body["error"] == "druidException"
    assert body["errorCode"] == "invalidInput"
    assert body["category"] == "INVALID_INPUT" and body["persona"] == "USER"
    assert body["context"]["sourceType"] == "sql"
    assert all(isinstance(v, str) for v in body["context"].values())


def test_the_issue_statement_points_at_the_second_comma() -> None:
    err = error_of("SELECT channel,, FROM wikipedia")
    assert err.message == "Received an unexpected token [,] (line [1], column [16])"
    body = err.to_druid_json(None)
    assert body["context"] == {
        "sourceType": "sql",
        "line": "1",
        "column": "16",
        "token": ",",
    }


def test_positions_count_lines_and_the_explain_prefix() -> None:
    err = error_of("SELECT channel\n  FROM wikipedia\n WHERE")
    assert err.message == "Received an unexpected token [<EOF>] (line [3], column [7])"
    err = error_of("EXPLAIN PLAN FOR SELECT a,, FROM t")
    assert err.message == "Received an unexpected token [,] (line [1], column [27])"
    # Calcite names a dangling keyword with the end of input after it.
    assert error_of("SELECT * FROM t JOIN").message == (
        "Received an unexpected token [JOIN <EOF>] (line [1], column [17])"
    )
    assert error_of("SELECT 'abc FROM t").message == (
        "Lexical error at line [1], column [8]: unterminated string or quoted name"
    )


VALID = [
    "SELECT channel, COUNT(*) AS c FROM wikipedia WHERE page IN ('a', 'b') "
    "GROUP BY channel HAVING COUNT(*) > 1 ORDER BY c DESC LIMIT 5 OFFSET 1",
    'SELECT "group", LEFT(channel, 2), CURRENT_TIMESTAMP FROM wikipedia',
    "SELECT COUNT(1), SUM(CASE WHEN a > 0 THEN 1 ELSE 0 END) FROM t WHERE b IS NOT NULL",
    "SELECT a FROM (SELECT a FROM t) WHERE a IN (SELECT a FROM u)",
    "SELECT TIME_FLOOR(__time, 'PT1H'), COUNT(*) FROM t GROUP BY 1",
    "SELECT a FROM t WHERE a IS DISTINCT FROM b OR a IS NOT DISTINCT FROM c",
]


@pytest.mark.parametrize("text", VALID)
def test_valid_sql_still_parses(text: str) -> None:
    parse_sql(text)


def test_fuzzed_statements_parse_or_fail_like_druid() -> None:
    """Delete, duplicate or swap tokens of valid statements: every outcome is a parse or a
    Druid-shaped parse error, never another exception nor a leaked parser message."""
    rng = random.Random(11)
    pieces = [q.replace("(", " ( ").replace(")", " ) ").replace(",", " , ").split() for q in VALID]
    failures = 0
    for _ in range(400):
        words = list(rng.choice(pieces))
        i = rng.randrange(len(words))
        op = rng.choice(("drop", "dup", "swap", "comma"))
        if op == "drop":
            del words[i]
        elif op == "dup":
            words.insert(i, words[i])
        elif op == "swap" and i + 1 < len(words):
            words[i], words[i + 1] = words[i + 1], words[i]
        else:
            words.insert(i, ",")
        text = " ".join(words)
        try:
            parse_sql(text)
        except SqlParseError as err:
            failures += 1
            assert MESSAGE.match(err.message), (text, err.message)
            assert not any(leak in err.message for leak in LEAKS), (text, err.message)
    assert failures > 200
