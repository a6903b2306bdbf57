"""The broadcast hash join a data node does per segment for a ``join`` datasource (see
``common.query.datasource`` for the rules): the segment is the left side, the inline right side
comes with the query. With unique right keys the match is ``index_in`` (on the dictionary when the
left key is a dictionary column) and right-side strings come back dictionary-encoded; duplicate
right keys or several equalities take a hash join keeping the left row order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.expr.kernels import nums, strs
from common.expr.parse import Ident
from common.expr.vector import evaluate
from common.query.columns import one_dictionary
from common.query.datasource import InlineDataSource, JoinDataSource


def _keys(left: Any, right: Any) -> tuple[Any, Any]:
    """Both key columns in one comparable type: strings if either is, else doubles."""
    lt, rt = left.type, right.type
    if lt == rt:
        return left, right
    if pa.types.is_string(lt) or pa.types.is_string(rt) or pa.types.is_null(lt):
        return strs(left) if not pa.types.is_null(lt) else left.cast(pa.string()), strs(right)
    return nums(left).cast(pa.float64()), nums(right).cast(pa.float64())


def apply_join(
    spec: JoinDataSource, table: pa.Table, wanted: Callable[[str], bool] | None = None
) -> pa.Table:
    """The segment ``table`` (the left side) joined with the spec's right side; ``wanted``:
    which right-side columns (by their prefixed name) the query reads (None: all), the others
    are left out of the result (the join keys still match)."""
    if isinstance(spec.left, JoinDataSource):
        table = apply_join(spec.left, table)
    assert isinstance(spec.right, InlineDataSource)
    right = spec.right.table()
    prefix = spec.rightPrefix
    pairs = spec.key_pairs()
    values = [c for c in right.column_names if wanted is None or wanted(prefix + c)]
    coded = _join_on_codes(spec, table, right, values)
    if coded is not None:
        return coded
    left_keys, right_keys = [], []
    for expr, col in pairs:
        lk = evaluate(expr, table, encoded=len(pairs) == 1)
        rk = right.column(col).combine_chunks()
        if pa.types.is_dictionary(lk.type):
            dict_keys, rk = _keys(lk.dictionary, rk)
            lk = pa.DictionaryArray.from_arrays(lk.indices, dict_keys)
        else:
            lk, rk = _keys(lk, rk)
        left_keys.append(lk)
        right_keys.append(rk)
    kept = [c for c in table.column_names if not c.startswith(prefix)]
    left = table.select(kept)
    rk0 = right_keys[0]
    unique = pc.count_distinct(rk0).as_py() == len(rk0) - rk0.null_count
    if len(pairs) == 1 and unique:
        lk0 = left_keys[0]
        # Null keys match nothing (SQL-compatible mode): skip_nulls leaves them unmatched.
        if pa.types.is_dictionary(lk0.type):
            on_dict = pc.index_in(lk0.dictionary, value_set=rk0, skip_nulls=True)
            idx = on_dict.take(lk0.indices)
        else:
            idx = pc.index_in(lk0, value_set=rk0, skip_nulls=True)
        if spec.joinType == "INNER":
            keep = pc.is_valid(idx)
            left, idx = left.filter(keep), idx.filter(keep)
        for name in values:
            rcol = right.column(name).combine_chunks()
            if pa.types.is_string(rcol.type):  # dictionary-encoded: no string copies
                enc = rcol.dictionary_encode()  # unique values: equal strings share one code
                value: Any = pa.DictionaryArray.from_arrays(
                    enc.indices.take(idx), enc.dictionary, safe=False
                )
            else:
                value = rcol.take(idx)
            left = left.append_column(prefix + name, value)
        return left
    left_keys = [k.dictionary_decode() if pa.types.is_dictionary(k.type) else k for k in left_keys]
    return _general_join(spec, left, right.select(values), left_keys, right_keys)


def _join_on_codes(
    spec: JoinDataSource, table: pa.Table, right: pa.Table, values: list[str] | None = None
) -> pa.Table | None:
    """One equality whose left side is a dictionary column (one dictionary of distinct strings,
    as a segment's dimension) and unique right keys: the right row of each DICTIONARY value is
    found once, and each right column comes out as that row's value mapped through the left
    column's codes, chunk by chunk (no copy of the left rows, one gather per right column;
    right-side strings stay dictionary-encoded); ``values``: the right columns to build (None:
    all). None when the join is not of that shape."""
    pairs = spec.key_pairs()
    if len(pairs) != 1 or not isinstance(pairs[0][0], Ident):
        return None
    name, col = pairs[0][0].name, pairs[0][1]
    if name not in table.column_names:
        return None
    left_col = table.column(name)
    dictionary = one_dictionary(left_col)
    if dictionary is None:
        return None
    rk = right.column(col).combine_chunks()
    dict_keys, rk = _keys(dictionary, rk)
    if pc.count_distinct(rk).as_py() != len(rk) - rk.null_count:
        return None
    # Null keys match nothing (SQL-compatible mode): skip_nulls leaves them unmatched.
    pos = pc.index_in(dict_keys, value_set=rk, skip_nulls=True)  # per dictionary value
    kept = [c for c in table.column_names if not c.startswith(spec.rightPrefix)]
    left = table.select(kept)
    codes = [c.indices for c in left_col.chunks]
    if spec.joinType == "INNER":
        # a matched flag per dictionary value, and False for the null code at the end
        matched = np.append(np.asarray(pc.is_valid(pos).to_numpy(zero_copy_only=False)), False)
        keep = []
        for i, c in enumerate(codes):
            hit = matched[np.asarray(pc.fill_null(c, len(pos)).to_numpy(), dtype=np.intp)]
            keep.append(pa.array(hit, pa.bool_()))
            codes[i] = c.filter(keep[-1])
        left = left.filter(pa.chunked_array(keep, pa.bool_()))
    for rname in right.column_names if values is None else values:
        rcol = right.column(rname).combine_chunks()
        if pa.types.is_string(rcol.type):  # dictionary-encoded: no string copies
            enc = rcol.dictionary_encode()  # unique values: equal strings share one code
            per_value = enc.indices.take(pos)
            value: Any = pa.chunked_array(
                [  # the codes are enc's by construction: not checked again, row by row
                    pa.DictionaryArray.from_arrays(per_value.take(c), enc.dictionary, safe=False)
                    for c in codes
                ],
                pa.dictionary(enc.indices.type, enc.dictionary.type),
            )
        else:
            per_value = rcol.take(pos)
            value = pa.chunked_array([per_value.take(c) for c in codes], rcol.type)
        left = left.append_column(spec.rightPrefix + rname, value)
    return left


def _general_join(
    spec: JoinDataSource, left: pa.Table, right: pa.Table, lkeys: list[Any], rkeys: list[Any]
) -> pa.Table:
    """Hash join allowing duplicate right keys; rows stay in left order."""
    n = left.num_rows
    lk = pa.table({f"__k{i}": k for i, k in enumerate(lkeys)}).append_column(
        "__lidx", pa.array(np.arange(n, dtype=np.int64))
    )
    rk = pa.table({f"__k{i}": k for i, k in enumerate(rkeys)}).append_column(
        "__ridx", pa.array(np.arange(right.num_rows, dtype=np.int64))
    )
    keys = [f"__k{i}" for i in range(len(lkeys))]
    how = "inner" if spec.joinType == "INNER" else "left outer"
    joined = lk.join(rk, keys=keys, join_type=how, use_threads=False)
    joined = joined.sort_by([("__lidx", "ascending"), ("__ridx", "ascending")])
    out = left.take(joined.column("__lidx"))
    ridx = joined.column("__ridx")
    for name in right.column_names:
        out = out.append_column(spec.rightPrefix + name, right.column(name).take(ridx))
    return out
