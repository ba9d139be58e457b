"""BeatExtractor: the same beats, bit for bit, however a bed's stream is chunked."""

from __future__ import annotations

import itertools
from collections import deque
from functools import cache

import numpy as np
import pytest

from monitor import contract
from monitor.beats import Beat, BeatExtractor, af_evidence, extract_beats, window_length
from monitor.records import read_lead


@cache
def _signal(data_dir: str, record: str, seconds: float) -> tuple[np.ndarray, float]:
    lead = read_lead(record, data_dir)
    return lead.signal[: int(seconds * lead.fs)], lead.fs


def _fingerprint(beats: list[Beat]) -> list[tuple]:
    """Everything a beat carries, patient context included, bit for bit."""
    return [
        (
            b.index, b.index_125, b.waveform.tobytes(), b.rr_prev, b.rr_next, b.rr_local,
            b.rr_long, b.context.features.tobytes(), b.context.morph.tobytes(),
            b.context.template.tobytes(), b.previous.tobytes(),
        )
        for b in beats
    ]  # fmt: skip


def _chunked(x: np.ndarray, fs: float, chunk: int) -> list[Beat]:
    extractor = BeatExtractor(fs)
    beats: list[Beat] = []
    for start in range(0, len(x), chunk):
        beats += extractor.feed(x[start : start + chunk])
    assert extractor.samples_in == len(x)
    return beats + extractor.flush()


@pytest.mark.parametrize("record", ["119", "208"])
@pytest.mark.parametrize(("chunk", "seconds"), [(1, 60), (7, 180), (250, 180), (10000, 180)])
def test_chunking_gives_identical_beats(mitdb_dir, record, chunk, seconds):
    x, fs = _signal(str(mitdb_dir), record, seconds)
    whole = extract_beats(x, fs)
    assert len(whole) > 0.8 * seconds  # both records run at 60-100 bpm
    assert _fingerprint(_chunked(x, fs, chunk)) == _fingerprint(whole)


@pytest.mark.parametrize("record", ["119", "208"])
def test_beats_follow_the_contract(mitdb_dir, record):
    x, fs = _signal(str(mitdb_dir), record, 180)
    beats = extract_beats(x, fs)
    for b in beats:
        assert b.waveform.shape == (contract.BEAT_LEN,)
        assert b.waveform.dtype == np.float32
        assert b.waveform.min() >= 0.0 and b.waveform.max() <= 1.0
        n = window_length(b.rr_local)
        assert np.all(b.waveform[n:] == 0.0)  # zero-padded after the 1.2 x RR window
        assert b.waveform[:n].max() == 1.0  # min-max scaled window
        assert b.rr_prev > 0 and b.rr_next > 0 and b.rr_local > 0
        assert b.index == round(b.index_125 * fs / contract.FS)
    idx = [b.index for b in beats]
    assert idx == sorted(set(idx))
    # rr_next of one beat is rr_prev of the next.
    for a, b in itertools.pairwise(beats):
        assert a.rr_next == b.rr_prev


def test_first_beats_survive_the_detector_learning_period(mitdb_dir):
    """The detector confirms its first beats only after learning the levels (seconds later);
    the extractor must still hold their samples, or it would cut them from the wrong place."""
    x, fs = _signal(str(mitdb_dir), "119", 15)
    beats = _chunked(x, fs, 1)
    assert beats[0].index_125 < 3 * contract.FS
    ref = extract_beats(x, fs)
    np.testing.assert_array_equal(beats[0].waveform, ref[0].waveform)


def test_af_evidence_tells_random_intervals_from_frequent_premature_beats():
    """Atrial fibrillation: RR intervals without a pattern fill the histogram and turn at
    about 2/3 of the beats. Frequent premature beats, even a majority of them, give two
    interval lengths: fewer bins, and a pattern."""
    rng = np.random.default_rng(0)
    fibrillation = deque(rng.uniform(0.4, 1.2, 32), maxlen=32)
    ectopy = deque(
        [0.55 if k % 3 else 1.1 for k in range(32)] + rng.normal(0, 0.01, 32), maxlen=32
    )
    ent_af, tpr_af = af_evidence(fibrillation)
    ent_ect, _ = af_evidence(ectopy)
    assert ent_af > 0.8 and 0.5 < tpr_af < 0.85
    assert ent_ect < 0.6
    assert af_evidence(deque([0.8] * 7)) == (0.0, 0.0)  # too few intervals: absent
