"""VF/flutter detector on the raw lead: chunk invariance, input checks, real VF and sinus."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.alarms import AlarmSettings
from monitor.alarms.leads import OtherLead
from monitor.alarms.vf import VFDetector, VFReading, VFSettings, vf_readings
from monitor.records import read_lead
from monitor.signal.resample import resample

#: cu05: one VF episode, `[` at sample 89692 (250 Hz).
CU05_ONSET = 89692
#: 207's long ventricular flutter episode: `(VFL` at 554740, `(IVR` at 590149 (360 Hz).
VFL_START, VFL_END = 554740, 590149


def _cudb_segment(cudb_dir, record: str, start: int, stop: int) -> tuple[np.ndarray, float]:
    import wfdb

    rec = wfdb.rdrecord(str(cudb_dir / record), sampfrom=start, sampto=stop, channels=[0])
    x = rec.p_signal[:, 0]
    assert np.all(np.isfinite(x))
    return x, float(rec.fs)


def _feed_chunked(x: np.ndarray, fs: float, rng, start: int = 0, max_chunk: int = 2000):
    det = VFDetector(fs)
    det.restart(start)
    out: list[VFReading] = []
    i = 0
    while i < len(x):
        n = int(rng.integers(1, max_chunk))
        out += det.feed(x[i : i + n])
        i += n
    return out


@pytest.fixture(scope="module")
def cu05(cudb_dir):
    start = CU05_ONSET - 60 * 250
    x, fs = _cudb_segment(cudb_dir, "cu05", start, CU05_ONSET + 30 * 250)
    return x, fs, start


@pytest.fixture(scope="module")
def rec207(mitdb_dir):
    return read_lead("207", mitdb_dir)


def test_chunk_invariance_250hz(cu05):
    x, fs, start = cu05
    det = VFDetector(fs)
    det.restart(start)
    whole = det.feed(x)
    assert len(whole) >= 80
    rng = np.random.default_rng(5)
    for max_chunk in (3, 300, 5000):
        assert _feed_chunked(x, fs, rng, start, max_chunk) == whole


def test_chunk_invariance_360hz(rec207):
    x = rec207.signal[VFL_START - 20 * 360 : VFL_START + 20 * 360]
    whole = vf_readings(x, 360.0)
    rng = np.random.default_rng(7)
    for max_chunk in (2, 500, 4000):
        assert _feed_chunked(x, 360.0, rng, 0, max_chunk) == whole


@pytest.mark.parametrize("fs", [100.0, 9999.0, 10_000.0])
def test_any_rate_and_fixed_positions(fs):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.3, round(12 * fs))
    det = VFDetector(fs)
    det.restart(round(0.5 * fs))
    rs = det.feed(x)
    assert [r.index for r in rs] == [round(k * fs) for k in range(9, 13)]
    assert _feed_chunked(x, fs, rng, round(0.5 * fs), max_chunk=round(3 * fs)) == rs


@pytest.mark.parametrize("fs", [99.0, 10_001.0, float("nan"), float("inf"), 0, True, "360"])
def test_bad_fs(fs):
    with pytest.raises(ValueError, match="fs"):
        VFDetector(fs)


def test_bad_samples():
    det = VFDetector(250.0)
    with pytest.raises(ValueError, match="x_mv"):
        det.feed(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="x_mv"):
        det.feed(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="x_mv"):
        vf_readings(np.array([np.inf]), 250.0)
    with pytest.raises(ValueError, match="start_index"):
        det.restart(-1)
    assert det.feed(np.zeros(0)) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("window_s", 2.0), ("window_s", 20.0), ("step_s", 0.0), ("step_s", 9.0),
     ("amplitude_floor_mv", -0.1), ("tcsc_level", 1.5), ("max_freq_hz", 60.0),
     ("score_threshold", float("nan")), ("hf_hz", True)],
)  # fmt: skip
def test_bad_settings(field, value):
    with pytest.raises(ValueError, match=field):
        VFSettings(**{field: value})


@pytest.mark.parametrize("level", [0.0, 1.5, -3.0])
def test_flat_line_is_not_shockable(level):
    rs = vf_readings(np.full(30 * 250, level), 250.0)
    assert len(rs) == 23
    assert not any(r.shockable for r in rs)


def test_low_amplitude_vf_like_signal_is_not_shockable():
    """A 5 Hz wobble is VF-shaped, but 0.1 mV peak-to-peak is below the amplitude floor."""
    fs = 250.0
    t = np.arange(round(30 * fs)) / fs
    rng = np.random.default_rng(0)
    x = 0.05 * np.sin(2 * np.pi * (5 * t + 0.3 * np.sin(2 * np.pi * 0.4 * t)))
    x += rng.normal(0, 0.002, len(t))
    rs = vf_readings(x, fs)
    assert not any(r.shockable for r in rs)
    assert any(r.score >= VFSettings().score_threshold for r in rs)  # shape alone would call it
    assert any(r.shockable for r in vf_readings(20 * x, fs))  # 2 mV: coarse


def test_sinus_record_100_is_never_shockable(mitdb_dir):
    lead = read_lead("100", mitdb_dir)
    rs = vf_readings(lead.signal, lead.fs)
    assert len(rs) > 1700
    assert not any(r.shockable for r in rs)


def test_cudb_vf_onset_found_within_10_s(cu05):
    x, fs, start = cu05
    det = VFDetector(fs)
    det.restart(start)
    rs = det.feed(x)
    before = [r for r in rs if r.index <= CU05_ONSET]
    after = [r for r in rs if CU05_ONSET < r.index <= CU05_ONSET + 10 * fs]
    assert not any(r.shockable for r in before)
    # An alarm confirming over 3 consecutive readings fires within 10 s of the `[` mark.
    flags = [r.shockable for r in after]
    assert any(all(flags[i : i + 3]) for i in range(len(flags) - 2)), flags


def test_207_flutter_episode_found(rec207):
    fs = rec207.fs
    x = rec207.signal[VFL_START - 30 * round(fs) : VFL_END]
    det = VFDetector(fs)
    det.restart(VFL_START - 30 * round(fs))
    rs = det.feed(x)
    window = round(VFSettings().window_s * fs)
    inside = [r.shockable for r in rs if r.index - window >= VFL_START]
    assert len(inside) > 80
    assert np.mean(inside) > 0.8
    first = next(r.index for r in rs if r.index > VFL_START and r.shockable)
    assert (first - VFL_START) / fs <= 10.0


def test_vf_found_after_resampling_to_1_khz(cu05):
    """Features live at one analysis rate: the same VF at 1 kHz is still shockable."""
    x, fs, _ = cu05
    seg = x[round(70 * fs) :]  # 10 s after the onset: VF fills the window
    fast = resample(seg, fs, 1000.0)
    a = vf_readings(seg, fs)
    b = vf_readings(fast, 1000.0)
    assert np.mean([r.shockable for r in a]) > 0.5
    assert np.mean([r.shockable for r in b]) > 0.5


# --- in the whole pipeline: beats, classifier and alarm engine (the offline annotator) ---------


@pytest.fixture(scope="module")
def classifier():
    from monitor.classifier import DEFAULT_MODEL, BeatClassifier

    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"shipped model {DEFAULT_MODEL} not built yet: python -m trainer.train")
    return BeatClassifier(device="cpu")


def _alarms(x: np.ndarray, fs: float, classifier, name: str = "x"):
    from monitor.annotate import annotate_lead
    from monitor.records import Lead

    return annotate_lead(Lead(name, "ECG", fs, x), classifier).alarms


def test_a_cudb_vf_onset_raises_one_red_alarm_within_10_s(cu05, classifier):
    x, fs, start = cu05
    onset_s = (CU05_ONSET - start) / fs
    alarms = _alarms(x, fs, classifier)
    vf = [a for a in alarms if a.kind == "vflutter" and a.start_s >= onset_s - 5]
    assert vf and vf[0].start_s - onset_s <= 10.0, alarms
    assert vf[0].priority == "high"
    during = [a.kind for a in alarms if vf[0].start_s < a.start_s < (vf[0].end_s or np.inf) - 4]
    assert not any(k in ("asystole", "vtach", "xtachy", "xbrady") for k in during), during


def _shock_artefact(seconds: float, fs: float) -> np.ndarray:
    """An amplifier recovering from defibrillation: each second, 0.3 s pinned at its +5 mV rail,
    then a decay back to the baseline."""
    second = np.full(round(fs), 5.0)
    t = np.arange(round(0.7 * fs)) / fs
    second[round(0.3 * fs) :] = 5.0 * np.exp(-t / 0.1)
    return np.tile(second, round(seconds))


def test_a_saturated_amplifier_holds_a_vf_alarm_until_a_readable_signal_ends_it(cu05, classifier):
    """A clipped signal says nothing of whether VF has ended, so the alarm is held through it
    (otherwise it ends vf_end_hold_s into it), and a readable sinus rhythm afterwards ends it."""
    from tests.synthetic import synthetic_ecg

    x, fs, start = cu05
    onset_s = (CU05_ONSET - start) / fs
    shock = _shock_artefact(15, fs)
    sinus = synthetic_ecg(np.arange(0.5, 40, 0.8), 40, np.random.default_rng(3), fs=fs)
    alarms = _alarms(np.concatenate([x, shock, sinus]), fs, classifier, "cu05")
    shock_end_s = (len(x) + len(shock)) / fs
    vf = [a for a in alarms if a.kind == "vflutter" and a.start_s >= onset_s - 5]
    assert len(vf) == 1, alarms
    assert vf[0].end_s is not None and vf[0].end_s > shock_end_s, vf
    hold = AlarmSettings().vf_end_hold_s
    assert vf[0].end_s <= shock_end_s + VFSettings().window_s + hold + 2.0, vf
    assert any(a.kind == "noisy_signal" and a.start_s < shock_end_s for a in alarms), alarms


def test_a_flat_line_after_vf_ends_the_vf_alarm_so_asystole_can_show(cu05, classifier):
    """VF fades to asystole: a flat line is not held like a clipped one."""
    x, fs, start = cu05
    onset_s = (CU05_ONSET - start) / fs
    alarms = _alarms(np.concatenate([x, np.zeros(round(30 * fs))]), fs, classifier, "cu05")
    vf = [a for a in alarms if a.kind == "vflutter" and a.start_s >= onset_s - 5]
    assert len(vf) == 1 and vf[0].end_s is not None and vf[0].end_s < len(x) / fs + 18, vf
    assert any(a.kind == "asystole" and a.start_s >= vf[0].end_s for a in alarms), alarms


def test_a_flutter_episode_of_207_ends_the_beat_alarms_it_makes_meaningless(rec207, classifier):
    fs = rec207.fs
    first = VFL_START - 60 * round(fs)
    alarms = _alarms(rec207.signal[first:VFL_END], fs, classifier, "207")
    onset_s = (VFL_START - first) / fs
    vf = [a for a in alarms if a.kind == "vflutter" and a.start_s >= onset_s - 5]
    assert vf and vf[0].start_s - onset_s <= 10.0, alarms
    # Nothing starts under it but technical alarms. Its end is decided vf_end_hold_s after the
    # last shockable reading, and beats come late, so the last seconds are left out.
    from monitor.alarms import AlarmSettings

    last = (vf[0].end_s or np.inf) - AlarmSettings().vf_end_hold_s - 1.0
    for a in alarms:
        if vf[0].start_s < a.start_s < last:
            assert a.priority == "technical", a


def test_sinus_record_100_raises_no_red_alarm(mitdb_dir, classifier):
    lead = read_lead("100", mitdb_dir)
    red = [a for a in _alarms(lead.signal, lead.fs, classifier, "100") if a.priority == "high"]
    assert red == []


# --- a second lead tells a lead fault from asystole and fibrillation ----------------------------


def test_a_flat_analysed_lead_with_beats_on_the_other_is_leads_off_not_asystole(
    mitdb_dir, classifier
):
    lead = read_lead("100", mitdb_dir, others=True)
    n = round(180 * lead.fs)
    flat = lead.signal[:n].copy()
    flat[round(60 * lead.fs) : round(120 * lead.fs)] = 0.0  # electrodes off for a minute
    two = _alarms_of(flat, lead.fs, classifier, (lead.others[0][:n],))
    one = _alarms_of(flat, lead.fs, classifier, ())
    assert "leads_off" in {a.kind for a in two}
    assert not any(a.kind == "asystole" for a in two), two
    assert any(a.kind == "asystole" for a in one)  # one lead cannot tell them apart




def test_other_lead_holds_its_last_seconds_in_order_whatever_the_chunks():
    fs = 250.0
    other = OtherLead(fs, AlarmSettings())
    x = np.arange(30_000, dtype=np.float64)
    rng = np.random.default_rng(1)
    pos = 0
    while pos < len(x):
        chunk = x[pos : pos + int(rng.choice([1, 7, 90, 250, 7_000]))]  # 7 000 > the 24 s held
        other.feed(chunk, pos / fs)
        pos += len(chunk)
        keep = round(24 * fs)
        np.testing.assert_array_equal(other.samples(), x[max(0, pos - keep) : pos])


def _fault_minute(lead, replace, n_s: float = 180.0, start_s: float = 0.0):
    """`n_s` of a two-lead record from `start_s` with the analysed lead's second minute
    replaced by `replace(segment)`; returns (analysed lead, other lead)."""
    s, n = round(start_s * lead.fs), round(n_s * lead.fs)
    x = lead.signal[s : s + n].copy()
    a, b = round(60 * lead.fs), round(120 * lead.fs)
    x[a:b] = replace(x[a:b])
    return x, lead.others[0][s : s + n].copy()


def test_a_flat_lead_beside_atrial_fibrillation_is_leads_off_not_asystole(mitdb_dir, classifier):
    """221 is in atrial fibrillation: the other lead's R-peaks are no steady train, but with
    the analysed lead's electrodes off that lead decides, as it would alone."""
    lead = read_lead("221", mitdb_dir, others=True)
    x, other = _fault_minute(lead, np.zeros_like)
    alarms = _alarms_of(x, lead.fs, classifier, (other,))
    assert "leads_off" in {a.kind for a in alarms}
    assert not any(a.kind in ("asystole", "vflutter") for a in alarms), alarms


def test_a_flat_lead_beside_a_changing_beat_mix_is_leads_off_not_asystole(mitdb_dir, classifier):
    """208's other lead has large PVCs and small normal beats: during the fault a run of normal
    beats has a median size under half the median from before, though every one is a QRS as
    large as the normal beats before it (its lower quartile)."""
    lead = read_lead("208", mitdb_dir, others=True)
    x, other = _fault_minute(lead, np.zeros_like, start_s=300.0)
    alarms = _alarms_of(x, lead.fs, classifier, (other,))
    assert "leads_off" in {a.kind for a in alarms}
    assert not any(a.kind in ("asystole", "vflutter") for a in alarms), alarms


def test_a_flat_lead_beside_a_slow_rhythm_is_leads_off_not_asystole(mitdb_dir, classifier):
    """201 from 5:00: the other lead's detector, started afresh, finds three R-peaks in some
    8 s windows, none an asystole apart: a heart that beats, if slowly."""
    lead = read_lead("201", mitdb_dir, others=True)
    x, other = _fault_minute(lead, np.zeros_like, start_s=300.0)
    alarms = _alarms_of(x, lead.fs, classifier, (other,))
    assert "leads_off" in {a.kind for a in alarms}
    assert not any(a.kind in ("asystole", "vflutter") for a in alarms), alarms


def test_electrode_noise_on_the_analysed_lead_is_a_lead_fault_not_asystole(
    mitdb_dir, nstdb_dir, classifier
):
    """Pure electrode-motion noise at the size of the QRS complexes, with quiet stretches of
    several seconds inside it, beside an intact lead."""
    from simulators.noise import load_noise, qrs_amplitude

    lead = read_lead("203", mitdb_dir, others=True)
    noise = load_noise("em", lead.fs, nstdb_dir)
    size = qrs_amplitude(lead.signal[: round(60 * lead.fs)], lead.fs)
    x, other = _fault_minute(lead, lambda seg: noise[: len(seg)] / np.ptp(noise[: len(seg)]) * size)
    two = _alarms_of(x, lead.fs, classifier, (other,))
    one = _alarms_of(x, lead.fs, classifier, ())
    assert any(a.kind == "asystole" for a in one)  # alone, a quiet stretch looks like asystole
    assert not any(a.kind in ("asystole", "vflutter") for a in two), two
    assert "lead_fault" in {a.kind for a in two}


@pytest.mark.parametrize("other_lead", ["standstill", "rubbing"])
def test_a_standstill_on_a_two_lead_bed_still_raises_asystole(mitdb_dir, nstdb_dir, classifier,
                                                                other_lead):
    """The heart stops: both leads fall to their baseline (attached: wander and 20 uV of
    noise), or the other lead's electrode rubs meanwhile. Asystole within 10 s either way."""
    from simulators.noise import load_noise

    lead = read_lead("100", mitdb_dir, others=True)
    rng = np.random.default_rng(0)

    def stopped(seg):
        t = np.arange(len(seg)) / lead.fs
        return seg[0] + 0.025 * np.sin(2 * np.pi * 0.3 * t) + rng.normal(0.0, 0.02, len(seg))

    x, other = _fault_minute(lead, stopped)
    a, b = round(60 * lead.fs), round(120 * lead.fs)
    if other_lead == "standstill":
        other[a:b] = stopped(other[a:b])
    else:
        other[a:b] = load_noise("em", lead.fs, nstdb_dir)[: b - a]
    alarms = _alarms_of(x, lead.fs, classifier, (other,))
    asystole = [e for e in alarms if e.kind == "asystole"]
    assert asystole and 60.0 <= asystole[0].start_s <= 70.0, alarms


def test_true_pauses_of_232_are_asystole_with_both_leads_too(mitdb_dir, classifier):
    """232's sinus pauses of 4-6 s are reported when the beat that ends them comes; the other
    lead, which paused too, must not talk them away (a late report asks no other lead)."""
    lead = read_lead("232", mitdb_dir, others=True)
    n = round(1200 * lead.fs)
    one = _alarms_of(lead.signal[:n], lead.fs, classifier, ())
    two = _alarms_of(lead.signal[:n], lead.fs, classifier, (lead.others[0][:n],))
    starts = [round(a.start_s) for a in one if a.kind == "asystole"]
    assert len(starts) >= 4
    assert [round(a.start_s) for a in two if a.kind == "asystole"] == starts

def test_fibrillation_on_one_lead_while_the_other_shows_beats_is_a_lead_fault(
    mitdb_dir, cu05, classifier
):
    lead = read_lead("100", mitdb_dir, others=True)
    vf, vf_fs, start = cu05
    vf = resample(vf[CU05_ONSET - start :], vf_fs, lead.fs)  # 30 s of VF, at 360 Hz
    n = round(120 * lead.fs)
    x = lead.signal[:n].copy()
    at = round(60 * lead.fs)
    x[at : at + len(vf)] = vf[: n - at]  # an artefact that looks like VF on one lead only
    two = _alarms_of(x, lead.fs, classifier, (lead.others[0][:n],))
    one = _alarms_of(x, lead.fs, classifier, ())
    assert any(a.kind == "vflutter" for a in one)  # alone, the lead looks like VF
    assert not any(a.kind in ("vflutter", "asystole") for a in two), two
    assert "lead_fault" in {a.kind for a in two}


def test_flutter_seen_on_both_leads_of_207_is_still_an_alarm(mitdb_dir, classifier):
    lead = read_lead("207", mitdb_dir, others=True)
    first = VFL_START - 60 * round(lead.fs)
    alarms = _alarms_of(lead.signal[first:VFL_END], lead.fs, classifier,
                        (lead.others[0][first:VFL_END],))  # fmt: skip
    onset_s = (VFL_START - first) / lead.fs
    vf = [a for a in alarms if a.kind == "vflutter" and a.start_s >= onset_s - 5]
    assert vf and vf[0].start_s - onset_s <= 10.0, alarms
    assert not any(a.kind == "lead_fault" for a in alarms)


def _alarms_of(x, fs, classifier, others):
    from monitor.annotate import annotate_lead
    from monitor.records import Lead

    return annotate_lead(Lead("x", "ECG", fs, x, others), classifier).alarms
