"""A bed's chunk continuity and stream clock, decided without Kafka."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.bed import Position, TimeMap, judge
from monitor.validate import Chunk

T0 = 1_700_000_000.0
FS = 360.0


def _chunk(start_index: int, start_time: float, n: int = 90, fs: float = FS, record="100"):
    return Chunk("bed-01", record, fs, start_index, start_time, np.zeros(n))


# The stream has played samples 900..989 starting at T0 + 2.5 s: the next chunk starts at 990.
POS = Position("100", FS, 990, 900, T0 + 2.5, T0 + 2.75)


def test_the_next_chunk_continues():
    v = judge(POS, _chunk(990, T0 + 2.75))
    assert not v.drop and v.reset is None and v.rejected is None


def test_a_gap_is_reported_and_resets_the_bed():
    v = judge(POS, _chunk(1080, T0 + 3.0))
    assert not v.drop
    assert v.rejected.category == "gap"
    assert "90 samples (0.25 s) missing before start_index 1080 (expected 990)" in v.reset
    assert str(v.rejected).endswith("pipeline reset")


@pytest.mark.parametrize(("start", "kind"), [(900, "duplicate"), (810, "out_of_order")])
def test_a_repeated_or_late_chunk_is_dropped(start, kind):
    v = judge(POS, _chunk(start, T0 + 2.5 - (900 - start) / FS))
    assert v.drop and v.reset is None
    assert v.rejected.category == kind


def test_a_rate_change_is_reported_and_resets_the_bed():
    v = judge(POS, _chunk(990, T0 + 2.75, fs=250.0))
    assert not v.drop and v.rejected.category == "rate_change"
    assert "360 to 250 Hz" in v.reset


def test_a_record_restarting_from_zero_resets_without_a_dead_letter():
    v = judge(POS, _chunk(0, T0 + 2.75))
    assert not v.drop and v.rejected is None
    assert v.reset == "record restarted from its beginning"


def test_a_jump_back_with_a_newer_clock_is_a_discontinuity():
    v = judge(POS, _chunk(450, T0 + 2.75))
    assert not v.drop and v.rejected.category == "jump"


def test_a_new_record_on_the_bed_resets_without_a_dead_letter():
    v = judge(POS, _chunk(0, T0 + 2.75, record="213"))
    assert not v.drop and v.rejected is None and "from 100 to 213" in v.reset


def test_a_clock_going_back_while_the_index_continues_is_reported():
    v = judge(POS, _chunk(990, T0 + 1.0))
    assert v.rejected.category == "time_jump" and v.reset


def test_time_map_follows_the_chunks_own_clock():
    tm = TimeMap(FS, spacing_s=1.0, keep_s=10.0)
    tm.add(0, T0)
    tm.add(360, T0 + 1.0)
    tm.add(720, T0 + 2.5)  # the device clock jumped half a second
    assert tm.time_of(180) == pytest.approx(T0 + 0.5)
    assert tm.time_of(540) == pytest.approx(T0 + 1.5)
    assert tm.time_of(900) == pytest.approx(T0 + 3.0)


def test_time_map_keeps_one_anchor_a_second_and_forgets_old_ones():
    tm = TimeMap(FS, spacing_s=1.0, keep_s=10.0)
    for k in range(400):  # 100 s of 250 ms chunks
        tm.add(k * 90, T0 + k * 0.25)
    assert len(tm._index) <= 12
    assert tm.time_of(399 * 90) == pytest.approx(T0 + 399 * 0.25)
    # Older than the kept anchors: timed from the oldest one.
    assert tm.time_of(0) == pytest.approx(T0)


def test_time_map_needs_an_anchor():
    with pytest.raises(ValueError, match="no anchors"):
        TimeMap(FS).time_of(0)
