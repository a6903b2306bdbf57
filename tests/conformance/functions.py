"""The master list: every function of Druid's ``querying/sql-functions.md`` (the all-functions
page, in its order) and every operator of ``querying/sql-operators.md``, each with the key of
the ``cases_<key>.py`` page that must hold at least one case for it
(``tests/unit/test_conformance_doc.py``). A page with no cases module yet is listed in
``docs/sql.md`` as not covered, with its number of functions."""

from __future__ import annotations

from tests.conformance.framework import Page

NUMERIC = "scalar_numeric"
STRING = "scalar_string"
DATETIME = "scalar_datetime"
REDUCTION = "scalar_reduction"
IP = "scalar_ip"
OTHER = "scalar_other"
SKETCH = "scalar_sketch"
JSON = "json"
OPERATORS = "operators"
AGGREGATION = "aggregations"
ARRAY = "array"
MULTIVALUE = "multivalue"
WINDOW = "window"

#: The pages whose cases other work adds (``cases_<key>.py`` with this ``PAGE``).
PENDING_PAGES = {
    AGGREGATION: Page("querying/sql-aggregations.md", "Aggregation functions"),
    ARRAY: Page("querying/sql-array-functions.md", "Array functions"),
    MULTIVALUE: Page("querying/sql-multivalue-string-functions.md", "Multi-value string functions"),
    WINDOW: Page("querying/sql-window-functions.md", "Window functions"),
}

_BY_PAGE: dict[str, str] = {
    NUMERIC: """ABS ACOS ASIN ATAN ATAN2 BITWISE_AND BITWISE_COMPLEMENT
        BITWISE_CONVERT_DOUBLE_TO_LONG_BITS BITWISE_CONVERT_LONG_BITS_TO_DOUBLE BITWISE_OR
        BITWISE_SHIFT_LEFT BITWISE_SHIFT_RIGHT BITWISE_XOR CEIL COS COT DEGREES DIV EXP FLOOR
        HUMAN_READABLE_BINARY_BYTE_FORMAT HUMAN_READABLE_DECIMAL_BYTE_FORMAT
        HUMAN_READABLE_DECIMAL_FORMAT LN LOG10 MOD PI POWER RADIANS ROUND SAFE_DIVIDE SIN SQRT
        TAN TRUNC TRUNCATE""",
    STRING: """BTRIM CHAR_LENGTH CHARACTER_LENGTH CONCAT CONTAINS_STRING DECODE_BASE64_UTF8
        ICONTAINS_STRING LEFT LENGTH LOOKUP LOWER LPAD LTRIM PARSE_LONG POSITION REGEXP_EXTRACT
        REGEXP_LIKE REGEXP_REPLACE REPEAT REPLACE REVERSE RIGHT RPAD RTRIM STRING_FORMAT STRLEN
        STRPOS SUBSTR SUBSTRING TEXTCAT TRIM UPPER""",
    DATETIME: """CEIL CURRENT_DATE CURRENT_TIMESTAMP DATE_TRUNC EXTRACT FLOOR MILLIS_TO_TIMESTAMP
        TIME_CEIL TIME_EXTRACT TIME_FLOOR TIME_FORMAT TIME_IN_INTERVAL TIME_PARSE TIME_SHIFT
        TIMESTAMP_TO_MILLIS TIMESTAMPADD TIMESTAMPDIFF""",
    REDUCTION: "GREATEST LEAST",
    IP: "IPV4_MATCH IPV4_PARSE IPV4_STRINGIFY IPV6_MATCH",
    OTHER: "BLOOM_FILTER_TEST CASE CAST COALESCE DECODE_BASE64_COMPLEX NULLIF NVL",
    SKETCH: """DS_CDF DS_GET_QUANTILE DS_GET_QUANTILES DS_HISTOGRAM DS_QUANTILE_SUMMARY DS_RANK
        DS_TUPLE_DOUBLES_INTERSECT DS_TUPLE_DOUBLES_METRICS_SUM_ESTIMATE DS_TUPLE_DOUBLES_NOT
        DS_TUPLE_DOUBLES_UNION HLL_SKETCH_ESTIMATE HLL_SKETCH_ESTIMATE_WITH_ERROR_BOUNDS
        HLL_SKETCH_TO_STRING HLL_SKETCH_UNION THETA_SKETCH_ESTIMATE
        THETA_SKETCH_ESTIMATE_WITH_ERROR_BOUNDS THETA_SKETCH_INTERSECT THETA_SKETCH_NOT
        THETA_SKETCH_UNION""",
    JSON: """JSON_KEYS JSON_MERGE JSON_OBJECT JSON_PATHS JSON_QUERY JSON_QUERY_ARRAY JSON_VALUE
        PARSE_JSON TO_JSON_STRING TRY_PARSE_JSON""",
    AGGREGATION: """ANY_VALUE APPROX_COUNT_DISTINCT APPROX_COUNT_DISTINCT_BUILTIN
        APPROX_COUNT_DISTINCT_DS_HLL APPROX_COUNT_DISTINCT_DS_THETA APPROX_QUANTILE
        APPROX_QUANTILE_DS APPROX_QUANTILE_FIXED_BUCKETS ARRAY_AGG ARRAY_CONCAT_AGG AVG BIT_AND
        BIT_OR BIT_XOR BLOOM_FILTER COUNT DS_HLL DS_QUANTILES_SKETCH DS_THETA DS_TUPLE_DOUBLES
        EARLIEST EARLIEST_BY GROUPING LATEST LATEST_BY LISTAGG MAX MIN STDDEV STDDEV_POP
        STDDEV_SAMP STRING_AGG SUM TDIGEST_GENERATE_SKETCH TDIGEST_QUANTILE VAR_POP VAR_SAMP
        VARIANCE""",
    ARRAY: """ARRAY ARRAY_APPEND ARRAY_CONCAT ARRAY_CONTAINS ARRAY_LENGTH ARRAY_OFFSET
        ARRAY_OFFSET_OF ARRAY_ORDINAL ARRAY_ORDINAL_OF ARRAY_OVERLAP ARRAY_PREPEND ARRAY_SLICE
        ARRAY_TO_MV ARRAY_TO_STRING SCALAR_IN_ARRAY STRING_TO_ARRAY""",
    MULTIVALUE: """MV_APPEND MV_CONCAT MV_CONTAINS MV_FILTER_NONE MV_FILTER_ONLY MV_LENGTH
        MV_OFFSET MV_OFFSET_OF MV_ORDINAL MV_ORDINAL_OF MV_OVERLAP MV_PREPEND MV_SLICE
        MV_TO_ARRAY MV_TO_STRING STRING_TO_MV""",
    WINDOW: """CUME_DIST DENSE_RANK FIRST_VALUE LAG LAST_VALUE LEAD NTILE PERCENT_RANK RANK
        ROW_NUMBER""",
}

#: sql-operators.md, as its tables write them.
OPERATOR_LIST = [
    "x + y",
    "x - y",
    "x * y",
    "x / y",
    "timestamp_expr + interval_expr",
    "timestamp_expr - interval_expr",
    "x || y",
    "x = y",
    "x IS NOT DISTINCT FROM y",
    "x <> y",
    "x IS DISTINCT FROM y",
    "x > y",
    "x >= y",
    "x < y",
    "x <= y",
    "x AND y",
    "x OR y",
    "NOT x",
    "x IS NULL",
    "x IS NOT NULL",
    "x IS TRUE",
    "x IS NOT TRUE",
    "x IS FALSE",
    "x IS NOT FALSE",
    "x BETWEEN y AND z",
    "x NOT BETWEEN y AND z",
    "x LIKE pattern [ESCAPE esc]",
    "x NOT LIKE pattern [ESCAPE esc]",
    "x IN (values)",
    "x NOT IN (values)",
    "x IN (subquery)",
    "x NOT IN (subquery)",
    "PIVOT",
    "UNPIVOT",
]

#: page key -> the functions (or operators) the page documents
FUNCTIONS: dict[str, list[str]] = {
    **{key: text.split() for key, text in _BY_PAGE.items()},
    OPERATORS: OPERATOR_LIST,
}
