"""IP address functions: Druid's ``querying/sql-scalar.md#ip-address-functions``, with the
examples of ``querying/sql-functions.md`` (``kttm``'s ``forwarded_for`` values written as
literals). An address is dotted-decimal text or its 32-bit integer; what is not a valid address
matches nothing and parses or stringifies to null."""

from tests.conformance.framework import Page, column, scalar

PAGE = Page("querying/sql-scalar.md#ip-address-functions", "Scalar functions: IP address")

CASES = [
    scalar(
        "IPV4_MATCH",
        "IPV4_MATCH('181.13.41.82', '181.13.41.0/24')",
        True,
        native="ipv4_match('181.13.41.82', '181.13.41.0/24')",
    ),
    scalar(
        "IPV4_MATCH",
        "IPV4_MATCH('177.242.100.0', '181.13.41.0/24')",
        False,
        native="ipv4_match('177.242.100.0', '181.13.41.0/24')",
    ),
    scalar(
        "IPV4_MATCH",
        "IPV4_MATCH(3232235521, '192.168.0.0/16')",
        True,
        native="ipv4_match(3232235521, '192.168.0.0/16')",
    ),
    scalar(
        "IPV4_MATCH",
        "IPV4_MATCH('not an address', '192.168.0.0/16')",
        False,
        native="ipv4_match('not an address', '192.168.0.0/16')",
    ),
    scalar("IPV4_PARSE", "IPV4_PARSE('5.5.5.5')", 84215045, native="ipv4_parse('5.5.5.5')"),
    scalar("IPV4_PARSE", "IPV4_PARSE(3232235521)", 3232235521, native="ipv4_parse(3232235521)"),
    scalar("IPV4_PARSE", "IPV4_PARSE('5.5.5')", None, native="ipv4_parse('5.5.5')"),
    scalar(
        "IPV4_STRINGIFY", "IPV4_STRINGIFY(84215045)", "5.5.5.5", native="ipv4_stringify(84215045)"
    ),
    scalar(
        "IPV4_STRINGIFY",
        "IPV4_STRINGIFY('192.168.0.1')",
        "192.168.0.1",
        native="ipv4_stringify('192.168.0.1')",
    ),
    scalar(
        "IPV6_MATCH",
        "IPV6_MATCH('75e9:efa4:29c6:85f6::232c', '75e9:efa4:29c6:85f6::/64')",
        True,
        native="ipv6_match('75e9:efa4:29c6:85f6::232c', '75e9:efa4:29c6:85f6::/64')",
    ),
    scalar(
        "IPV6_MATCH",
        "IPV6_MATCH('75e9:efa4:29c6:85f7::1', '75e9:efa4:29c6:85f6::/64')",
        False,
        native="ipv6_match('75e9:efa4:29c6:85f7::1', '75e9:efa4:29c6:85f6::/64')",
    ),
    column(
        "IPV4_PARSE",
        "IPV4_PARSE(CONCAT('10.0.0.', dim6))",
        "numfoo",
        [167772161, 167772162, 167772163, 167772164, 167772165, 167772166],
    ),
    column(
        "IPV4_STRINGIFY",
        "IPV4_STRINGIFY(l1)",
        "numfoo",
        ["0.0.0.7", "0.4.246.203", "0.0.0.0", None, None, None],
    ),
    column(
        "IPV4_MATCH",
        "IPV4_MATCH(CONCAT('10.0.0.', dim6), '10.0.0.0/30')",
        "numfoo",
        [True, True, True, False, False, False],
    ),
]
