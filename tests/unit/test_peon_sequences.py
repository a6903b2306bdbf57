"""Sequences: initial layout, routing, setEndOffsets rules (druid-internals 4.3), persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.ingest.sequences import (
    END_OF_STREAM,
    EndOffsetsError,
    checkpoints_view,
    decide_end_offsets,
    initial_sequences,
    load_sequences,
    save_sequences,
    sequence_for,
)


def test_initial_from_io_config_and_from_checkpoints() -> None:
    [seq] = initial_sequences("base", {0: 5, 1: 7}, {0: END_OF_STREAM, 1: END_OF_STREAM}, None)
    assert seq.sequence_name == "base_0" and seq.assignments == {0, 1}
    seqs = initial_sequences("base", {0: 5}, {0: 100}, {0: {0: 5}, 1: {0: 20}})
    assert [(s.sequence_name, s.start_offsets, s.end_offsets) for s in seqs] == [
        ("base_0", {0: 5}, {0: 20}),
        ("base_1", {0: 20}, {0: 100}),
    ]
    assert seqs[0].checkpointed and not seqs[1].checkpointed
    assert sequence_for(seqs, 0, 19) is seqs[0]
    assert sequence_for(seqs, 0, 20) is seqs[1]
    assert sequence_for(seqs, 0, 100) is None
    assert checkpoints_view(seqs) == {"0": {"0": 5}, "1": {"0": 20}}


def test_set_end_offsets_refusals() -> None:
    seqs = initial_sequences("b", {0: 0}, {0: END_OF_STREAM}, None)
    cur = {0: 10}
    with pytest.raises(EndOffsetsError, match="map"):
        decide_end_offsets(seqs, None, False, True, cur, "b")
    with pytest.raises(EndOffsetsError, match="not being handled"):
        decide_end_offsets(seqs, {3: 10}, False, True, cur, "b")
    with pytest.raises(EndOffsetsError, match="paused"):
        decide_end_offsets(seqs, {0: 10}, False, False, cur, "b")
    with pytest.raises(EndOffsetsError, match=">= current"):
        decide_end_offsets(seqs, {0: 9}, False, True, cur, "b")


def test_checkpoint_then_finish_and_duplicates() -> None:
    seqs = initial_sequences("b", {0: 0}, {0: 50}, None)
    cur = {0: 10}
    assert not decide_end_offsets(seqs, {0: 10}, False, True, cur, "b").duplicate
    assert [(s.start_offsets, s.end_offsets) for s in seqs] == [
        ({0: 0}, {0: 10}),
        ({0: 10}, {0: 50}),
    ]
    assert seqs[0].checkpointed and not seqs[0].is_open  # read to its end: publishable
    # the same checkpoint again (a replica's retry) is idempotent
    assert decide_end_offsets(seqs, {0: 10}, False, False, cur, "b").duplicate
    assert len(seqs) == 2
    cur = {0: 15}
    assert not decide_end_offsets(seqs, {0: 15}, True, True, cur, "b").duplicate
    assert seqs[-1].end_offsets == {0: 15} and seqs[-1].checkpointed
    assert decide_end_offsets(seqs, {0: 15}, True, False, cur, "b").duplicate
    with pytest.raises(EndOffsetsError, match="already"):
        decide_end_offsets(seqs, {0: 20}, True, True, cur, "b")


def test_persist_round_trip(tmp_path: Path) -> None:
    assert load_sequences(tmp_path) is None
    seqs = initial_sequences("b", {0: 1, 2: 3}, {0: 9, 2: 9}, None)
    save_sequences(tmp_path, seqs)
    again = load_sequences(tmp_path)
    assert again is not None
    assert [s.to_json() for s in again] == [s.to_json() for s in seqs]
