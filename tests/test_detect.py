"""R-peak detector: EC57 quality on real records, chunk invariance, odd inputs, settings."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from monitor import contract
from monitor.records import read_lead
from monitor.signal import ec57
from monitor.signal.detect import (
    EnergyFilter,
    Levels,
    QRSDetector,
    detect_qrs,
    fiducial,
    is_baseline_shift,
    local_maxima,
    running_max,
)
from monitor.signal.resample import resample

FS = contract.FS


@cache
def _lead125(data_dir: str, record: str) -> tuple[np.ndarray, ec57.Reference, float]:
    """The record's lead at 125 Hz and its reference beats (at the source rate)."""
    import wfdb

    lead = read_lead(record, data_dir)
    ann = wfdb.rdann(f"{data_dir}/{record}", "atr")
    return resample(lead.signal, lead.fs, FS), ec57.reference_beats(ann.symbol, ann.sample), lead.fs


def _score(mitdb_dir, record: str, peaks: np.ndarray) -> ec57.Match:
    _, ref, fs = _lead125(str(mitdb_dir), record)
    det = np.round(np.asarray(peaks) * fs / FS)
    return ec57.match(ref.samples, det, fs, exclude=ref)


def _chunked(x: np.ndarray, chunk: int) -> list[int]:
    detector = QRSDetector(FS)
    peaks: list[int] = []
    for start in range(0, len(x), chunk):
        peaks += detector.feed(x[start : start + chunk])
    return peaks + detector.flush()


@pytest.mark.parametrize("record", ["100", "119"])
def test_ec57_quality_on_whole_records(mitdb_dir, record):
    x, _, _ = _lead125(str(mitdb_dir), record)
    m = _score(mitdb_dir, record, detect_qrs(x, FS))
    assert m.score.se >= 0.995, m.score
    assert m.score.ppv >= 0.995, m.score
    # The fiducial is the R-peak the annotators marked, not somewhere in the QRS.
    assert abs(np.median(m.offsets_s)) <= 0.010



def test_small_beats_of_a_bigeminy_are_found_by_search_back(mitdb_dir):
    """228 at 6:38-7:12: bigeminy whose conducted beats have a quarter of the PVCs' energy,
    below the threshold the PVCs set. Found only as PVCs, the rhythm looks like a regular one at
    35 bpm, so search-back by the mean RR alone never comes; it must come by
    `searchback_max_s` (the extreme-bradycardia limit) at the latest."""
    x, ref, fs = _lead125(str(mitdb_dir), "228")
    span = slice(int(398 * FS), int(432 * FS))
    peaks = detect_qrs(x, FS)
    peaks = peaks[(peaks >= span.start) & (peaks < span.stop)]
    wanted = ref.samples[(ref.samples >= 398.2 * fs) & (ref.samples < 431.8 * fs)]
    assert len(wanted) == 39
    m = ec57.match(wanted, np.round(peaks * fs / FS), fs)
    assert m.score.se == 1.0, m.score
    slow = QRSDetector(FS, searchback_max_s=10.0)
    slow_peaks = np.asarray(slow.feed(x) + slow.flush())
    assert np.sum((slow_peaks >= span.start) & (slow_peaks < span.stop)) < 25

@pytest.mark.parametrize("record", ["119", "208"])
@pytest.mark.parametrize("chunk", [7, 250, 10000])
def test_chunk_invariance_on_real_records(mitdb_dir, record, chunk):
    x, _, _ = _lead125(str(mitdb_dir), record)
    x = x[: int(10 * 60 * FS)]
    whole = _chunked(x, len(x))
    assert len(whole) > 500
    assert _chunked(x, chunk) == whole


def test_chunk_invariance_one_sample_at_a_time(mitdb_dir):
    x, _, _ = _lead125(str(mitdb_dir), "208")
    x = x[: int(3 * 60 * FS)]
    assert _chunked(x, 1) == _chunked(x, len(x))


def test_chunk_invariance_through_silence_and_relearning(mitdb_dir):
    """A 12 s flat stretch forces search-back misses and re-learning; both are events in the
    same time-ordered queue, so chunking cannot change them."""
    x, _, _ = _lead125(str(mitdb_dir), "119")
    x = np.concatenate(
        [x[: int(60 * FS)], np.full(int(12 * FS), x[int(60 * FS)]), x[: int(60 * FS)]]
    )
    whole = _chunked(x, len(x))
    for chunk in (1, 31, 250):
        assert _chunked(x, chunk) == whole
    # Beats resume after the silence.
    assert sum(p > int(75 * FS) for p in whole) > 50


def test_peaks_are_strictly_increasing_and_in_range(mitdb_dir):
    x, _, _ = _lead125(str(mitdb_dir), "208")
    peaks = detect_qrs(x, FS)
    assert np.all(np.diff(peaks) > 0)
    assert peaks[0] >= 0 and peaks[-1] < len(x)


def test_confirmation_latency(mitdb_dir):
    """After the learning period, beats are confirmed about 0.3 s after the R-peak; only
    those found by search-back take longer."""
    x, _, _ = _lead125(str(mitdb_dir), "208")
    x = x[: int(2 * 60 * FS)]
    detector = QRSDetector(FS)
    latency = []
    for newest in range(len(x)):
        for r in detector.feed(x[newest : newest + 1]):
            if r > 5 * FS:
                latency.append((newest - r) / FS)
    assert len(latency) > 100
    assert np.median(latency) < 0.35
    assert np.mean(np.array(latency) < 0.5) > 0.97


def test_amplitude_scale_does_not_matter(mitdb_dir):
    x, _, _ = _lead125(str(mitdb_dir), "119")
    x = x[: int(5 * 60 * FS)]
    peaks = detect_qrs(x, FS)
    # Power-of-two scaling is exact in floating point: identical decisions.
    np.testing.assert_array_equal(detect_qrs(x * 1024.0, FS), peaks)
    np.testing.assert_array_equal(detect_qrs(x / 4096.0, FS), peaks)
    # mV -> V and an offset: the same beats up to rounding.
    m = ec57.match(peaks, detect_qrs(x / 1000.0 + 3.0, FS), FS, window_s=0.02)
    assert m.score.se > 0.999 and m.score.ppv > 0.999


@pytest.mark.parametrize("level", [0.0, 5.0, -1234.5, 1e-9])
def test_flat_line_has_no_beats(level):
    x = np.full(int(60 * FS), level)
    assert len(detect_qrs(x, FS)) == 0
    assert _chunked(x, 7) == []


def test_sine_and_short_inputs_do_not_crash():
    t = np.arange(int(30 * FS)) / FS
    peaks = detect_qrs(np.sin(2 * np.pi * 1.2 * t), FS)
    assert np.all(np.diff(peaks) > 0)
    for n in (0, 1, 10, 100):
        detector = QRSDetector(FS)
        detector.feed(np.ones(n))
        assert detector.flush() == []


def test_other_sampling_rate(mitdb_dir):
    """Settings are in seconds: the same detector works on the 360 Hz original."""
    lead = read_lead("100", mitdb_dir)
    _, ref, fs = _lead125(str(mitdb_dir), "100")
    m = ec57.match(ref.samples, detect_qrs(lead.signal, lead.fs), fs, exclude=ref)
    assert m.score.se > 0.995 and m.score.ppv > 0.995


def test_bad_input_and_settings_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        QRSDetector().feed(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="fs"):
        QRSDetector(fs=0)
    with pytest.raises(ValueError, match="band_hz"):
        QRSDetector(fs=25.0)
    with pytest.raises(ValueError, match="threshold"):
        QRSDetector(threshold=1.5)
    with pytest.raises(ValueError, match="refractory_s"):
        QRSDetector(refractory_s=-0.2)
    with pytest.raises(ValueError, match="searchback_max_s"):
        QRSDetector(searchback_max_s=0.0)


def test_local_maxima_matches_brute_force():
    rng = np.random.default_rng(1)
    f = np.round(rng.random(400) * 20)  # many ties
    for w in (1, 2, 5, 24, 25):
        expected = [
            t
            for t in range(w, len(f) - w)
            if f[t] > f[t - w : t].max() and f[t] >= f[t + 1 : t + w + 1].max()
        ]
        np.testing.assert_array_equal(local_maxima(f, w), expected)
    assert len(local_maxima(np.zeros(100), 5)) == 0


def test_running_max_matches_scipy_maximum_filter():
    from scipy.ndimage import maximum_filter1d

    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 31, 81, 400):
        f = np.round(rng.random(n) * 5)
        for w in {1, 2, 3, 16, 25, n}:
            if w <= n:
                full = maximum_filter1d(f, w)[w // 2 : w // 2 + n - w + 1]
                np.testing.assert_array_equal(running_max(f, w), full)


def test_filter_kernel_equals_scipys_public_lfilter():
    """The detector calls lfilter's kernel directly (for speed); it must be lfilter, bit for bit."""
    from scipy import signal as sps

    from monitor.signal.detect import _linear_filter

    rng = np.random.default_rng(4)
    x = rng.normal(size=31).cumsum()
    f = EnergyFilter(FS, (5.0, 15.0), 10)
    for b, a in [*f._bandpass, f._mwi, f._deriv]:
        zi = rng.normal(size=max(len(a), len(b)) - 1)
        got = _linear_filter(b, a, x, -1, zi)
        want = sps.lfilter(b, a, x, zi=zi)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


def test_energy_filter_is_exact_across_chunks():
    x = np.random.default_rng(2).normal(size=3000).cumsum()
    whole = EnergyFilter(FS, (5.0, 15.0), 10).process(x)
    f = EnergyFilter(FS, (5.0, 15.0), 10)
    parts = [f.process(x[i : i + 13]) for i in range(0, len(x), 13)]
    for k in range(2):
        np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), whole[k])


def test_levels_threshold_and_its_ceiling():
    levels = Levels(fraction=0.3, ceiling=0.5)
    levels.reset([10.0] * 8, rr=125)
    assert levels.threshold == pytest.approx(3.0)  # no noise yet: 0.3 x QRS level
    for _ in range(8):
        levels.add_noise(2.0)
    assert levels.threshold == pytest.approx(2.0 + 0.3 * 8.0)
    # Missed ectopic beats filed as noise cannot push the threshold above half the QRS level.
    for _ in range(8):
        levels.add_noise(9.0)
    assert levels.threshold == pytest.approx(5.0)
    levels.add_qrs(10.0, rr=100)
    assert levels.rr_mean == pytest.approx((7 * 125 + 100) / 8)


def test_fiducial_takes_the_largest_deflection_either_sign():
    x = np.zeros(50)
    x[20], x[26] = 0.6, -1.0  # small R, deep S: the S is the fiducial
    assert fiducial(x, 10, 40, x) == 26
    assert fiducial(x + 7.0, 10, 40, x + 7.0) == 26  # measured from the baseline, not zero
    assert fiducial(x, 10, 24, x) == 20  # only inside the window


def test_baseline_shift_check():
    qrs = np.zeros(28)
    qrs[10], qrs[14] = 40.0, -55.0  # upstroke then downstroke, 4 samples apart
    assert not is_baseline_shift(qrs, max_gap=19)
    step = np.zeros(28)
    step[8:16] = 30.0  # one-signed: a baseline step
    step[20] = -1.0
    assert is_baseline_shift(step, max_gap=19)
    far = np.zeros(28)
    far[2], far[25] = 40.0, -40.0  # both strokes, but too far apart for one complex
    assert is_baseline_shift(far, max_gap=19)


def test_baseline_step_is_not_a_beat():
    x = np.zeros(int(20 * FS))
    x[int(10 * FS) :] = 3.0
    assert len(detect_qrs(x, FS)) == 0


# -- EC57 matching ---------------------------------------------------------------------------


def test_match_counts_and_positions():
    ref = [100, 200, 300, 400]
    det = [103, 260, 395, 500]
    m = ec57.match(ref, det, fs=100.0, window_s=0.15)  # 15 samples
    assert m.score == ec57.Score(tp=2, fn=2, fp=2)
    np.testing.assert_array_equal(m.pairs, [[0, 0], [3, 2]])
    np.testing.assert_array_equal(m.missed, [1, 2])
    np.testing.assert_array_equal(m.extra, [1, 3])
    np.testing.assert_allclose(m.offsets_s, [0.03, -0.05])


def test_match_window_edge_is_inclusive():
    assert ec57.match([100], [115], fs=100.0, window_s=0.15).score.tp == 1
    assert ec57.match([100], [116], fs=100.0, window_s=0.15).score.tp == 0
    assert ec57.match([100], [84], fs=100.0, window_s=0.15).score.tp == 0


def test_match_is_one_to_one_and_nearest_first():
    # One detection between two beats goes to the nearer one.
    m = ec57.match([100, 120], [112], fs=100.0, window_s=0.15)
    np.testing.assert_array_equal(m.pairs, [[1, 0]])
    np.testing.assert_array_equal(m.missed, [0])
    # Two detections near one beat: the nearer matches, the other is extra.
    m = ec57.match([100], [95, 102], fs=100.0, window_s=0.15)
    np.testing.assert_array_equal(m.pairs, [[0, 1]])
    np.testing.assert_array_equal(m.extra, [0])


def test_match_empty_sides():
    assert ec57.match([], [], fs=360.0).score == ec57.Score()
    assert ec57.match([1, 2], [], fs=360.0).score == ec57.Score(fn=2)
    assert ec57.match([], [5], fs=360.0).score == ec57.Score(fp=1)
    with pytest.raises(ValueError, match="det_idx"):
        ec57.match([1], [5, 3], fs=360.0)


def test_vf_episodes_are_excluded_on_both_sides():
    symbols = ["N", "+", "N", "[", "!", "!", "]", "N", "V", "["]
    samples = [10, 15, 20, 30, 35, 40, 50, 60, 70, 80]
    ref = ec57.reference_beats(symbols, samples)
    np.testing.assert_array_equal(ref.samples, [10, 20, 60, 70])
    assert list(ref.symbols) == ["N", "N", "N", "V"]
    assert ref.excluded[0] == (30, 50)
    assert ref.excluded[1][0] == 80  # open at the end: runs to the end of the record
    # Detections inside an episode are neither true nor false.
    m = ec57.match(ref.samples, [10, 20, 36, 55, 60, 70, 90], fs=1.0, window_s=1.0, exclude=ref)
    assert m.score == ec57.Score(tp=4, fn=0, fp=1)
    np.testing.assert_array_equal(m.extra, [3])


def test_gross_adds_counts_not_percentages():
    total = ec57.gross([ec57.Score(99, 1, 0), ec57.Score(1, 9, 10)])
    assert total == ec57.Score(100, 10, 10)
    assert total.se == pytest.approx(100 / 110)
    assert np.isnan(ec57.Score().se)
