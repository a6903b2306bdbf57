"""The ``unnest`` and ``filter`` datasources applied to a segment's table (Druid's
``UnnestStorageAdapter`` and ``FilteredStorageAdapter``), before the query's own virtual
columns, filter and aggregation.

Unnest: the base's virtual column is evaluated per row; a row whose value is an array (or a
multi-value string) is repeated once per element, the element in the virtual column's output
column (a new column, or the one it names); a scalar value is one row. A null or empty array, or
a null value, gives no row. Then ``unnestFilter`` keeps the rows it matches. Everything is
vectorised: the rows are taken by parent index, the elements are the flattened list.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from common.query.columns import is_multi_value
from common.query.datasource import FilterDataSource, JoinDataSource, UnnestDataSource
from common.query.filters import filter_mask
from common.query.join import apply_join
from common.query.virtual import apply_virtual_columns


def apply_datasource(spec: Any, table: pa.Table) -> pa.Table:
    """``table`` (the base table's segment rows) as the datasource ``spec`` presents them."""
    if isinstance(spec, JoinDataSource):
        return apply_join(spec, table)
    if isinstance(spec, FilterDataSource):
        table = apply_datasource(spec.base, table)
        return table.filter(filter_mask(spec.filter, table))
    if isinstance(spec, UnnestDataSource):
        return unnest(spec, apply_datasource(spec.base, table))
    return table


def unnest(spec: UnnestDataSource, table: pa.Table) -> pa.Table:
    vc = spec.virtualColumn
    name = vc.name
    probe = apply_virtual_columns(table.select([c for c in table.column_names]), [vc])
    value = probe.column(name)
    value = value.combine_chunks() if isinstance(value, pa.ChunkedArray) else value
    if pa.types.is_dictionary(value.type):
        value = value.dictionary_decode()
    rest = table.drop_columns([name]) if name in table.column_names else table
    if is_multi_value(value.type):
        lists = value.cast(pa.list_(value.type.value_type))
        parents = pc.list_parent_indices(lists)
        elements = lists.flatten()
        out = rest.take(parents).append_column(name, elements)
    else:
        keep = pc.is_valid(value)
        out = rest.filter(keep).append_column(name, value.filter(keep))
    if spec.unnestFilter is not None:
        out = out.filter(filter_mask(spec.unnestFilter, out))
    return out
