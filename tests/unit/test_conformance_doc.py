"""``docs/sql.md``'s table of conformance cases per Druid page is the one the case tables give."""

from tests.conformance.report import current, table


def test_sql_doc_counts_the_conformance_cases() -> None:
    assert current() == table(), "run: python -m tests.conformance.report --write"
