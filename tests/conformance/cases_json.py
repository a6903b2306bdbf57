"""JSON functions: Druid's ``querying/sql-json-functions.md``. They read and build
``COMPLEX<json>`` values of nested columns, which kdruid does not have: each answers a 400 naming
the function (also the ``RETURNING`` form of JSON_VALUE, which sqlglot could not even parse)."""

from tests.conformance.framework import Page, refused

PAGE = Page("querying/sql-json-functions.md", "JSON functions")

CASES = [
    refused("JSON_KEYS", "SELECT JSON_KEYS(dim1, '$.') FROM foo"),
    refused("JSON_MERGE", """SELECT JSON_MERGE(dim1, '{"example_string": 123}') FROM foo"""),
    refused("JSON_OBJECT", "SELECT JSON_OBJECT(KEY 'dim1' VALUE dim1, KEY 'm1' VALUE m1) FROM foo"),
    refused("JSON_OBJECT", "SELECT JSON_OBJECT('dim1': dim1) FROM foo"),
    refused("JSON_PATHS", "SELECT JSON_PATHS(dim1) FROM foo"),
    refused("JSON_QUERY", "SELECT JSON_QUERY(dim1, '$.percentage') FROM foo"),
    refused("JSON_QUERY_ARRAY", "SELECT JSON_QUERY_ARRAY(dim1, '$.percentage') FROM foo"),
    refused("JSON_VALUE", "SELECT JSON_VALUE(dim1, '$.city' RETURNING VARCHAR) FROM foo"),
    refused(
        "JSON_VALUE", "SELECT COUNT(*) FROM foo WHERE JSON_VALUE(dim1, '$.continent') = 'Asia'"
    ),
    refused("PARSE_JSON", """SELECT PARSE_JSON('{"name":"Gus","email":"gus_cat@example.com"}')"""),
    refused("TRY_PARSE_JSON", """SELECT TRY_PARSE_JSON('{"name":"Gus",x:x}')"""),
    refused("TO_JSON_STRING", "SELECT TO_JSON_STRING(dim1) FROM foo"),
]
