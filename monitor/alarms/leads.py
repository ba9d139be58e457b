"""The bed's other leads: do they show the heart beating while the analysed lead does not?

A flat or fibrillating analysed lead is asystole or VF only if every lead agrees; one lead with
QRS complexes proves the heart beats, and the analysed lead has a fault (electrode off, loose,
rubbing). "Shows beats" rests on R-peaks found by the beat cutter's own QRS detector in the
other lead's last `WINDOW_S`: a steady train of them at a rate an organised rhythm has, on a
lead that is neither flat nor clipped. Fibrillation and noise do not give one (their detections
are irregular), nor does flutter (too fast). A looser test (a few R-peaks on a spiky,
high-kurtosis lead) found more lead faults but took two of MIT-BIH 207's six flutter episodes
for one: missing VF is the worse error.

For asystole alone, when the analysed lead has been lost (a flat line since its last beat, or
last beats that this lead's R-peaks did not confirm: it was counting noise as beats), this lead
decides as it would if it were the analysed one: R-peaks in any rhythm (atrial fibrillation,
frequent ectopy), none an asystole apart, and as large as its R-peaks were before the silence
(a detector started afresh on a lead whose heart has stopped finds that lead's baseline noise).

The question is only asked when the analysed lead looks silent or shockable, which is rare, so
an other lead costs a copy into a ring buffer per chunk, and the detector runs then, over the
ring, from scratch (a second live detector per lead took a worker from 470 to 319 beds).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monitor import contract
from monitor.alarms.quality import longest_run_at
from monitor.alarms.settings import AlarmSettings
from monitor.signal.detect import QRSDetector
from monitor.signal.resample import resample
from monitor.signal.rhythm import steadiness

#: Seconds of detected R-peaks looked at ...
WINDOW_S = 8.0
#: ... after this much signal for the detector to learn the lead's levels.
LEARN_S = 4.0
#: Seconds kept before the window, where the analysed lead's last beats are compared with
#: this lead's R-peaks (the asystole check comes up to ~6.5 s into a silence).
BEFORE_S = 12.0
#: A lead whose last beats this lead's R-peaks confirm less than this share of was already
#: lost before it went quiet: noise it took for beats. One heartbeat's R-peaks on two leads
#: lie within SAME_BEAT_S of each other; detections in noise land that near a beat of a
#: 60-120 bpm rhythm by chance about a third to a half of the time.
AGREEMENT = 0.8
SAME_BEAT_S = 0.1
#: R-peaks of this lead during the analysed lead's silence count as beats only if their
#: median size is at least this share of the lower quartile of this lead's R-peak sizes from
#: before it: a detector started afresh on a lead whose heart stopped finds its baseline
#: noise, far smaller. The quartile, not the median, because the mix of beats changes: a
#: lead whose PVCs are twice its normal beats has a median between the two before and the
#: normal beats' size during a run of normal beats.
SIZE_MATCH = 0.5
SIZE_QUANTILE = 0.25
#: Half-width (s) of the span around an R-peak whose peak-to-peak is its size.
QRS_HALF_S = 0.06
#: A lead whose R-peaks are smaller than this (mV) is too close to its own noise to vouch
#: for a heartbeat.
QRS_MIN_MV = 0.15
#: A steady train: at least this many R-peaks in the window ...
STEADY_BEATS = 4
#: ... whose intervals vary less than this (sinus arrhythmia and the odd ectopic pass; noise
#: and fibrillation do not) ...
STEADY_CV = 0.25
#: ... at a rate a heart beats with an organised rhythm.
RATE_BPM = (30.0, 200.0)
#: Against an asystole any rhythm will do, so the count asked for is what the slowest rhythm
#: with no asystole-long gap can show in the window: a 2:1 block at 36 bpm (RR 1.7 s) with one
#: beat missed by the restarted detector leaves three R-peaks 1.7 and 3.5 s apart.
ANY_RHYTHM_BEATS = 3


class OtherLead:
    """The last seconds of one other lead, fed in step with the analysed lead."""

    def __init__(self, fs: float, settings: AlarmSettings) -> None:
        self.fs = fs
        self.settings = settings
        self._need = round((WINDOW_S + LEARN_S) * fs)
        self._keep = round((BEFORE_S + WINDOW_S + LEARN_S) * fs)
        # A circular buffer: every chunk is written in place (a copy of the whole 24 s per
        # chunk cost a worker about 8 % of its beds); the held samples are put in order only
        # when the lead is asked about, which is rare.
        self._ring = np.zeros(self._keep)
        self._held = 0  # samples held, at most _keep
        self._write = 0  # where the next sample goes
        self._end_time = 0.0  # stream time just after the last sample
        self._asked: tuple[float, tuple[np.ndarray, np.ndarray] | None] | None = None
        #: (the analysed lead's last beat, the median and the SIZE_QUANTILE of this lead's
        #: R-peak sizes before it), taken once per silence, when it is first asked about.
        self._reference: tuple[float, float, float] | None = None

    def feed(self, x: np.ndarray, time: float) -> None:
        """Samples starting at stream `time`."""
        self._end_time = time + len(x) / self.fs
        x = np.asarray(x, dtype=np.float64)[-self._keep :]
        first = min(len(x), self._keep - self._write)  # the rest wraps to the start
        self._ring[self._write : self._write + first] = x[:first]
        self._ring[: len(x) - first] = x[first:]
        self._write = (self._write + len(x)) % self._keep
        self._held = min(self._keep, self._held + len(x))

    def samples(self) -> np.ndarray:
        """The held samples, oldest first (up to the last BEFORE_S + WINDOW_S + LEARN_S)."""
        if self._held < self._keep:
            return self._ring[: self._held].copy()
        return np.concatenate([self._ring[self._write :], self._ring[: self._write]])

    def shows_beats(self, time: float) -> bool:
        """Whether this lead showed a steady train of R-peaks in the `WINDOW_S` before `time`:
        the answer to "V-fib?" (and to "asystole?" at any rate)."""
        recent = self._recent_beats(time)
        if recent is None:
            return False
        cv, rate = steadiness(recent)
        return cv < STEADY_CV and RATE_BPM[0] <= rate <= RATE_BPM[1]

    def shows_any_rhythm(self, time: float, since: float) -> bool:
        """Whether this lead showed R-peaks throughout the `WINDOW_S` before `time`, none an
        asystole apart, in any rhythm (atrial fibrillation, frequent ectopy), and those after
        `since` (the analysed lead's last beat) as large as its R-peaks before: what this
        lead would answer to "asystole?" if it were the analysed one. Asked only when the
        analysed lead has been lost (electrodes off, or counting noise): a monitor then
        analyses another lead. Fibrillation is never refuted this way."""
        found = self._peaks(time)
        if found is None:
            return False
        times, sizes = found
        before = sizes[times <= since]
        if (self._reference is None or self._reference[0] != since) and len(before) >= STEADY_BEATS:
            self._reference = (
                since, float(np.median(before)), float(np.quantile(before, SIZE_QUANTILE)))
        recent = times[(times > time - WINDOW_S) & (times <= time)]
        if self._reference is None or len(recent) < ANY_RHYTHM_BEATS:
            return False
        edges = np.concatenate([[time - WINDOW_S], recent, [time]])
        if float(np.diff(edges).max()) >= self.settings.asystole_s:
            return False
        _, typical, small = self._reference
        during = sizes[times > since]
        size = float(np.median(during)) if len(during) else typical
        return typical >= QRS_MIN_MV and size >= SIZE_MATCH * small

    def disagrees(self, time: float, beats: Sequence[float], until: float) -> bool:
        """Whether the analysed lead's `beats` (R-peak times) up to `until`, its last beat,
        were mostly unconfirmed by this lead's R-peaks: it was counting noise as beats before
        it went quiet, so its silence says nothing about the heart. False when it cannot tell
        (too few beats in the span this lead covers, or this lead flat or clipped)."""
        found = self._peaks(time)
        if found is None:
            return False
        peaks = found[0]
        start = self._end_time - self._held / self.fs + LEARN_S
        mine = np.asarray([b for b in beats if start <= b <= until], dtype=np.float64)
        if len(mine) < STEADY_BEATS:
            return False
        return float(np.mean(confirmed(mine, peaks))) < AGREEMENT

    def _recent_beats(self, time: float) -> np.ndarray | None:
        """R-peak times (s) in the `WINDOW_S` before `time`, at least STEADY_BEATS of them, on
        a lead neither flat nor clipped; else None."""
        found = self._peaks(time)
        if found is None:
            return None
        peaks = found[0]
        recent = peaks[(peaks > time - WINDOW_S) & (peaks <= time)]
        return recent if len(recent) >= STEADY_BEATS else None

    def _peaks(self, time: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Every R-peak in the kept signal, (times s, sizes mV), on a lead neither flat nor
        clipped, else None. Detected once per asked `time`."""
        if self._asked is None or self._asked[0] != time:
            self._asked = (time, self._detect())
        return self._asked[1]

    def _detect(self) -> tuple[np.ndarray, np.ndarray] | None:
        s = self.settings
        flat_n = max(2, round(s.flat_s * self.fs))
        x = self.samples()
        if len(x) < self._need or float(np.ptp(x[-flat_n:])) < s.flat_ptp_mv:
            return None
        window = x[-self._need :]
        top, bottom = float(window.max()), float(window.min())
        clip = max(2, round(s.saturation_run_s * self.fs))
        if max(longest_run_at(window, top), longest_run_at(window, bottom)) >= clip:
            return None
        detector = QRSDetector(contract.FS, learn_s=LEARN_S)
        x125 = resample(x, self.fs, contract.FS)
        peaks = np.asarray([*detector.feed(x125), *detector.flush()], dtype=np.int64)
        half = max(1, contract.samples(QRS_HALF_S))
        sizes = np.array([np.ptp(x125[max(0, p - half) : p + half + 1]) for p in peaks])
        return self._end_time - len(x) / self.fs + peaks / contract.FS, sizes


def confirmed(times: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Whether each of `times` has one of the sorted `peaks` within SAME_BEAT_S."""
    if len(peaks) == 0:
        return np.zeros(len(times), dtype=bool)
    k = np.searchsorted(peaks, times)
    left = peaks[np.clip(k - 1, 0, len(peaks) - 1)]
    right = peaks[np.clip(k, 0, len(peaks) - 1)]
    return np.minimum(np.abs(times - left), np.abs(right - times)) <= SAME_BEAT_S
