"""Sketch functions: Druid's ``querying/sql-scalar.md#sketch-functions``. kdruid builds the
estimate of an HLL, theta or quantiles sketch aggregated in the same query; the other sketch
operations answer a 400 naming the function. Over ``foo``'s ``dim1`` (six rows, five distinct
non-empty values: DataSketches does not hash ``''``) the estimates are exact."""

from tests.conformance.framework import Case, Page, refused, scalar

PAGE = Page("querying/sql-scalar.md#sketch-functions", "Scalar functions: sketch")


def _agg(fn: str, expr: str, value: float) -> Case:
    """An estimate over foo: one row; the native query is a timeseries with a post-aggregator."""
    return scalar(fn, f"{expr} FROM foo", value)


CASES = [
    _agg("HLL_SKETCH_ESTIMATE", "HLL_SKETCH_ESTIMATE(DS_HLL(dim1), true)", 5.0),
    _agg("THETA_SKETCH_ESTIMATE", "THETA_SKETCH_ESTIMATE(DS_THETA(dim1))", 5.0),
    _agg("DS_GET_QUANTILE", "DS_GET_QUANTILE(DS_QUANTILES_SKETCH(m1), 0.0)", 1.0),
    _agg("DS_GET_QUANTILE", "DS_GET_QUANTILE(DS_QUANTILES_SKETCH(m1), 1.0)", 6.0),
    refused(
        "HLL_SKETCH_ESTIMATE_WITH_ERROR_BOUNDS",
        "SELECT HLL_SKETCH_ESTIMATE_WITH_ERROR_BOUNDS(DS_HLL(dim1), 1) FROM foo",
    ),
    refused("HLL_SKETCH_TO_STRING", "SELECT HLL_SKETCH_TO_STRING(DS_HLL(dim1)) FROM foo"),
    refused(
        "HLL_SKETCH_UNION",
        "SELECT HLL_SKETCH_ESTIMATE(HLL_SKETCH_UNION(DS_HLL(dim1), DS_HLL(dim2))) FROM foo",
    ),
    refused(
        "THETA_SKETCH_ESTIMATE_WITH_ERROR_BOUNDS",
        "SELECT THETA_SKETCH_ESTIMATE_WITH_ERROR_BOUNDS(DS_THETA(dim1), 1) FROM foo",
    ),
    refused(
        "THETA_SKETCH_UNION",
        "SELECT THETA_SKETCH_ESTIMATE(THETA_SKETCH_UNION(DS_THETA(dim1), DS_THETA(dim2))) FROM foo",
    ),
    refused(
        "THETA_SKETCH_INTERSECT",
        "SELECT THETA_SKETCH_ESTIMATE(THETA_SKETCH_INTERSECT(DS_THETA(dim1), "
        "DS_THETA(dim2))) FROM foo",
    ),
    refused(
        "THETA_SKETCH_NOT",
        "SELECT THETA_SKETCH_ESTIMATE(THETA_SKETCH_NOT(DS_THETA(dim1), DS_THETA(dim2))) FROM foo",
    ),
    refused(
        "DS_GET_QUANTILES", "SELECT DS_GET_QUANTILES(DS_QUANTILES_SKETCH(m1), 0.25, 0.5) FROM foo"
    ),
    refused("DS_HISTOGRAM", "SELECT DS_HISTOGRAM(DS_QUANTILES_SKETCH(m1), 2, 4) FROM foo"),
    refused("DS_CDF", "SELECT DS_CDF(DS_QUANTILES_SKETCH(m1), 2, 4) FROM foo"),
    refused("DS_RANK", "SELECT DS_RANK(DS_QUANTILES_SKETCH(m1), 3) FROM foo"),
    refused("DS_QUANTILE_SUMMARY", "SELECT DS_QUANTILE_SUMMARY(DS_QUANTILES_SKETCH(m1)) FROM foo"),
    refused(
        "DS_TUPLE_DOUBLES_METRICS_SUM_ESTIMATE",
        "SELECT DS_TUPLE_DOUBLES_METRICS_SUM_ESTIMATE(DS_TUPLE_DOUBLES(dim1, m1)) FROM foo",
        # the tuple sketch aggregate inside is refused first, naming itself
        name="DS_TUPLE_DOUBLES",
    ),
    *[
        refused(
            f"DS_TUPLE_DOUBLES_{op}",
            f"SELECT DS_TUPLE_DOUBLES_{op}(DS_TUPLE_DOUBLES(dim1, m1), DS_TUPLE_DOUBLES(dim1, m2)) "
            "FROM foo",
            name="DS_TUPLE_DOUBLES",
        )
        for op in ("INTERSECT", "NOT", "UNION")
    ],
]
