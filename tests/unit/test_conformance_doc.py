"""The conformance suite's bookkeeping: ``docs/sql.md``'s table of cases per Druid page is the
one the case tables give, and every function or operator Druid's reference pages list has a
case on its page once that page has a cases module (``tests/conformance/functions.py``)."""

from tests.conformance.framework import Refused, pages
from tests.conformance.functions import FUNCTIONS, PENDING_PAGES
from tests.conformance.report import current, table


def test_sql_doc_counts_the_conformance_cases() -> None:
    assert current() == table(), "run: python -m tests.conformance.report --write"


def test_every_listed_function_of_a_covered_page_has_a_case() -> None:
    covered = {p.key: p for p in pages()}
    assert covered, "no cases_*.py modules found"
    missing = {
        key: [fn for fn in FUNCTIONS[key] if fn not in {c.fn for c in covered[key].cases}]
        for key in FUNCTIONS
        if key in covered
    }
    assert not {k: v for k, v in missing.items() if v}, missing
    unknown = {
        p.key: sorted({c.fn for c in p.cases} - set(FUNCTIONS[p.key]))
        for p in covered.values()
        if p.key in FUNCTIONS
    }
    assert not {k: v for k, v in unknown.items() if v}, f"cases for unlisted names: {unknown}"


def test_every_page_of_the_master_list_has_cases_or_is_pending() -> None:
    keys = {p.key for p in pages()}
    assert set(FUNCTIONS) <= keys | set(PENDING_PAGES), set(FUNCTIONS) - keys - set(PENDING_PAGES)


def test_a_refused_case_names_what_is_refused() -> None:
    for p in pages():
        for c in p.cases:
            if isinstance(c.expected, Refused):
                assert c.expected.name.upper() in c.sql.upper(), (p.key, c.sql)
