"""String functions: Druid's ``querying/sql-scalar.md#string-functions``, with the examples and
answers of ``querying/sql-functions.md`` (an example over ``flight-carriers`` is written over the
value it shows: ``LOWER("OriginCityName")`` with ``San Juan, PR`` is ``LOWER('San Juan, PR')``).

Over the fixtures, ``foo``'s ``dim1`` is ``['', '10.1', '2', '1', 'def', 'abc']`` and ``dim2``
``['a', null, '', 'a', 'abc', null]``: with Druid's SQL-compatible nulls ``''`` is a value and
a function of a null is null."""

from tests.conformance.framework import SAME, Page, column, refused, scalar

PAGE = Page("querying/sql-scalar.md#string-functions", "Scalar functions: string")

CASES = [
    # ---- documented examples (sql-functions.md)
    scalar(
        "BTRIM",
        "BTRIM('___abc___', '_')",
        "abc",
        native="trim('___abc___', '_')",
        duckdb="SELECT TRIM('___abc___', '_')",
    ),
    scalar(
        "CONCAT",
        "CONCAT('San Juan, PR', ' to ', 'Washington, DC')",
        "San Juan, PR to Washington, DC",
        native="concat('San Juan, PR', ' to ', 'Washington, DC')",
        duckdb=SAME,
    ),
    scalar(
        "CONTAINS_STRING",
        "CONTAINS_STRING('San Juan, PR', 'San')",
        True,
        native="contains_string('San Juan, PR', 'San')",
        duckdb="SELECT CONTAINS('San Juan, PR', 'San')",
    ),
    scalar(
        "CONTAINS_STRING",
        "CONTAINS_STRING('Boston, MA', 'San')",
        False,
        native="contains_string('Boston, MA', 'San')",
    ),
    # The example's text is 'Hello World!' and a line feed; the page's table cannot show the LF.
    scalar(
        "DECODE_BASE64_UTF8",
        "DECODE_BASE64_UTF8('SGVsbG8gV29ybGQhCg==')",
        "Hello World!\n",
        native="decode_base64_utf8('SGVsbG8gV29ybGQhCg==')",
        duckdb="SELECT DECODE(FROM_BASE64('SGVsbG8gV29ybGQhCg=='))",
    ),
    scalar(
        "ICONTAINS_STRING",
        "ICONTAINS_STRING('San Juan, PR', 'san')",
        True,
        native="icontains_string('San Juan, PR', 'san')",
    ),
    scalar(
        "ICONTAINS_STRING",
        "ICONTAINS_STRING('Boston, MA', 'san')",
        False,
        native="icontains_string('Boston, MA', 'san')",
    ),
    scalar("LEFT", "LEFT('ABCDEFG', 3)", "ABC", native="left('ABCDEFG', 3)", duckdb=SAME),
    scalar("LENGTH", "LENGTH('San Juan, PR')", 12, native="strlen('San Juan, PR')", duckdb=SAME),
    scalar(
        "CHAR_LENGTH",
        "CHAR_LENGTH('San Juan, PR')",
        12,
        native="strlen('San Juan, PR')",
        duckdb=SAME,
    ),
    scalar(
        "CHARACTER_LENGTH",
        "CHARACTER_LENGTH('San Juan, PR')",
        12,
        native="strlen('San Juan, PR')",
        duckdb=SAME,
    ),
    scalar(
        "STRLEN",
        "STRLEN('San Juan, PR')",
        12,
        native="strlen('San Juan, PR')",
        duckdb="SELECT LENGTH('San Juan, PR')",
    ),
    scalar(
        "LOWER",
        "LOWER('San Juan, PR')",
        "san juan, pr",
        native="lower('San Juan, PR')",
        duckdb=SAME,
    ),
    scalar(
        "LPAD",
        "LPAD('Florida', 11, '+')",
        "++++Florida",
        native="lpad('Florida', 11, '+')",
        duckdb=SAME,
    ),
    scalar(
        "LPAD",
        "LPAD('Massachusetts', 11, '+')",
        "Massachuset",
        native="lpad('Massachusetts', 11, '+')",
        duckdb=SAME,
    ),
    scalar(
        "LTRIM", "LTRIM('___abc___', '_')", "abc___", native="ltrim('___abc___', '_')", duckdb=SAME
    ),
    scalar("PARSE_LONG", "PARSE_LONG('1110', 2)", 14, native="parse_long('1110', 2)"),
    scalar(
        "POSITION",
        "POSITION('PR' IN 'San Juan, PR' FROM 5)",
        11,
        native="(strpos('San Juan, PR', 'PR', (5 - 1)) + 1)",
    ),
    scalar(
        "POSITION",
        "POSITION('PR' IN 'Boston, MA' FROM 5)",
        0,
        native="(strpos('Boston, MA', 'PR', (5 - 1)) + 1)",
    ),
    scalar(
        "REGEXP_EXTRACT",
        "REGEXP_EXTRACT('San Juan, PR', '([^,]+)', 0)",
        "San Juan",
        native="regexp_extract('San Juan, PR', '([^,]+)', 0)",
        duckdb=SAME,
    ),
    scalar(
        "REGEXP_LIKE",
        "REGEXP_LIKE('San Juan, PR', '[A-Za-z]+\\s[A-Za-z]+')",
        True,
        native="regexp_like('San Juan, PR', '[A-Za-z]+\\\\s[A-Za-z]+')",
    ),
    scalar(
        "REGEXP_LIKE",
        "REGEXP_LIKE('Boston, MA', '[A-Za-z]+\\s[A-Za-z]+')",
        False,
        native="regexp_like('Boston, MA', '[A-Za-z]+\\\\s[A-Za-z]+')",
    ),
    scalar(
        "REGEXP_REPLACE",
        "REGEXP_REPLACE('foo bar baz', '([A-Za-z]+) ([A-Za-z]+) ([A-Za-z]+)', '$2!')",
        "bar!",
        native="regexp_replace('foo bar baz', '([A-Za-z]+) ([A-Za-z]+) ([A-Za-z]+)', '$2!')",
    ),
    scalar("REPEAT", "REPEAT('abc', 3)", "abcabcabc", native="repeat('abc', 3)", duckdb=SAME),
    scalar(
        "REPLACE",
        "REPLACE('abc 123 abc 123', 'abc', 'XYZ')",
        "XYZ 123 XYZ 123",
        native="replace('abc 123 abc 123', 'abc', 'XYZ')",
        duckdb=SAME,
    ),
    scalar("REVERSE", "REVERSE('abc')", "cba", native="reverse('abc')", duckdb=SAME),
    scalar("RIGHT", "RIGHT('ABCDEFG', 3)", "EFG", native="right('ABCDEFG', 3)", duckdb=SAME),
    scalar(
        "RPAD",
        "RPAD('Florida', 11, '+')",
        "Florida++++",
        native="rpad('Florida', 11, '+')",
        duckdb=SAME,
    ),
    scalar(
        "RTRIM", "RTRIM('___abc___', '_')", "___abc", native="rtrim('___abc___', '_')", duckdb=SAME
    ),
    scalar(
        "STRING_FORMAT",
        "STRING_FORMAT('Flight No.%d departing from %s', 314, 'SJU')",
        "Flight No.314 departing from SJU",
        native="format('Flight No.%d departing from %s', 314, 'SJU')",
    ),
    scalar(
        "STRPOS",
        "STRPOS('Hello World!', 'World')",
        7,
        native="(strpos('Hello World!', 'World') + 1)",
        duckdb=SAME,
    ),
    scalar(
        "SUBSTRING",
        "SUBSTRING('abcdefghi', 4, 3)",
        "def",
        native="substring('abcdefghi', 3, 3)",
        duckdb=SAME,
    ),
    scalar(
        "SUBSTR",
        "SUBSTR('abcdefghi', 4, 3)",
        "def",
        native="substring('abcdefghi', 3, 3)",
        duckdb=SAME,
    ),
    scalar(
        "TEXTCAT",
        "TEXTCAT('PR', ', USA')",
        "PR, USA",
        native="concat('PR', ', USA')",
        duckdb="SELECT CONCAT('PR', ', USA')",
    ),
    scalar(
        "TRIM",
        "TRIM(BOTH '_' FROM '___abc___')",
        "abc",
        native="trim('___abc___', '_')",
        duckdb=SAME,
    ),
    scalar(
        "UPPER",
        "UPPER('San Juan, PR')",
        "SAN JUAN, PR",
        native="upper('San Juan, PR')",
        duckdb=SAME,
    ),
    # This broker has no lookups loaded: an unknown lookup is Druid's 400 naming it. LOOKUP's
    # answers over Druid's lookyloo test lookup are in tests/unit/test_sql_lookups.py.
    refused("LOOKUP", "SELECT LOOKUP(dim1, 'code_to_name', 'key not found') FROM foo"),
    # ---- over the fixtures
    column(
        "CONCAT",
        "CONCAT(dim1, '-', dim2)",
        "foo",
        ["-a", None, "2-", "1-a", "def-abc", None],
        duckdb="SELECT dim1 || '-' || dim2 FROM foo",
    ),
    column(
        "TEXTCAT",
        "TEXTCAT(dim1, dim2)",
        "foo",
        ["a", None, "2", "1a", "defabc", None],
        duckdb="SELECT dim1 || dim2 FROM foo",
    ),
    column(
        "CONTAINS_STRING",
        "CONTAINS_STRING(dim1, 'b')",
        "foo",
        [False, False, False, False, False, True],
        duckdb="SELECT CONTAINS(dim1, 'b') FROM foo",
    ),
    column(
        "ICONTAINS_STRING",
        "ICONTAINS_STRING(dim1, 'DE')",
        "foo",
        [False, False, False, False, True, False],
    ),
    column("LEFT", "LEFT(dim1, 2)", "foo", ["", "10", "2", "1", "de", "ab"], duckdb=SAME),
    column("RIGHT", "RIGHT(dim1, 2)", "foo", ["", ".1", "2", "1", "ef", "bc"], duckdb=SAME),
    column("LENGTH", "LENGTH(dim2)", "foo", [1, None, 0, 1, 3, None], duckdb=SAME),
    column("CHAR_LENGTH", "CHAR_LENGTH(dim1)", "foo", [0, 4, 1, 1, 3, 3], duckdb=SAME),
    column("LOWER", "LOWER(UPPER(dim1))", "foo", ["", "10.1", "2", "1", "def", "abc"], duckdb=SAME),
    column("UPPER", "UPPER(dim2)", "foo", ["A", None, "", "A", "ABC", None], duckdb=SAME),
    column(
        "LPAD",
        "LPAD(dim1, 5, '*')",
        "foo",
        ["*****", "*10.1", "****2", "****1", "**def", "**abc"],
        duckdb=SAME,
    ),
    column("RPAD", "RPAD(dim1, 2, '-')", "foo", ["--", "10", "2-", "1-", "de", "ab"], duckdb=SAME),
    column("PARSE_LONG", "PARSE_LONG(dim1)", "foo", [None, None, 2, 1, None, None]),
    column("PARSE_LONG", "PARSE_LONG(dim1, 16)", "foo", [None, None, 2, 1, 3567, 2748]),
    column(
        "POSITION",
        "POSITION('b' IN dim1)",
        "foo",
        [0, 0, 0, 0, 0, 2],
        duckdb="SELECT STRPOS(dim1, 'b') FROM foo",
    ),
    column("STRPOS", "STRPOS(dim2, 'b')", "foo", [0, None, 0, 0, 2, None], duckdb=SAME),
    column(
        "REGEXP_EXTRACT",
        "REGEXP_EXTRACT(dim1, '^[a-z]+')",
        "foo",
        [None, None, None, None, "def", "abc"],
    ),
    column(
        "REGEXP_LIKE",
        "REGEXP_LIKE(dim1, '^[a-z]')",
        "foo",
        [False, False, False, False, True, True],
        duckdb="SELECT REGEXP_MATCHES(dim1, '^[a-z]') FROM foo",
    ),
    column(
        "REGEXP_REPLACE",
        "REGEXP_REPLACE(dim1, '[0-9]', '#')",
        "foo",
        ["", "##.#", "#", "#", "def", "abc"],
        duckdb="SELECT REGEXP_REPLACE(dim1, '[0-9]', '#', 'g') FROM foo",
    ),
    column(
        "REPEAT",
        "REPEAT(dim1, 2)",
        "foo",
        ["", "10.110.1", "22", "11", "defdef", "abcabc"],
        duckdb=SAME,
    ),
    column(
        "REPLACE",
        "REPLACE(dim1, 'a', 'x')",
        "foo",
        ["", "10.1", "2", "1", "def", "xbc"],
        duckdb=SAME,
    ),
    column("REVERSE", "REVERSE(dim1)", "foo", ["", "1.01", "2", "1", "fed", "cba"], duckdb=SAME),
    column(
        "STRING_FORMAT",
        "STRING_FORMAT('%s:%d', dim1, cnt)",
        "foo",
        [":1", "10.1:1", "2:1", "1:1", "def:1", "abc:1"],
    ),
    column("SUBSTRING", "SUBSTRING(dim1, 2, 2)", "numfoo", [None, "0.", None, None, "ef", "bc"]),
    column(
        "TRIM",
        "TRIM(LEADING 'a' FROM dim2)",
        "foo",
        ["", None, "", "", "bc", None],
        duckdb="SELECT LTRIM(dim2, 'a') FROM foo",
    ),
    column(
        "BTRIM",
        "BTRIM(dim5, 'a')",
        "numfoo",
        ["", "b", "b", "d", "", "b"],
        duckdb="SELECT TRIM(dim5, 'a') FROM numfoo",
    ),
    column("LTRIM", "LTRIM(dim5, 'a')", "numfoo", ["", "b", "ba", "d", "", "b"], duckdb=SAME),
    column("RTRIM", "RTRIM(dim5, 'a')", "numfoo", ["", "ab", "b", "ad", "", "ab"], duckdb=SAME),
]
