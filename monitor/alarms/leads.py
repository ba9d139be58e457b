"""The bed's other leads: do they show the heart beating while the analysed lead does not?

A flat or fibrillating analysed lead is asystole or VF only if every lead agrees; one lead with
QRS complexes proves the heart beats, and the analysed lead has a fault (electrode off, loose,
rubbing). "Shows beats" rests on R-peaks found by the beat cutter's own QRS detector in the
other lead's last `WINDOW_S`: a steady train of them at a rate an organised rhythm has, on a
lead that is neither flat nor clipped. Fibrillation and noise do not give one (their detections
are irregular), nor does flutter (too fast). A looser test (a few R-peaks on a spiky,
high-kurtosis lead) found more lead faults but took two of MIT-BIH 207's six flutter episodes
for one: missing VF is the worse error.

The question is only asked when the analysed lead looks silent or shockable, which is rare, so
an other lead costs a copy into a ring buffer per chunk, and the detector runs then, over the
ring, from scratch (a second live detector per lead took a worker from 470 to 319 beds).
"""

from __future__ import annotations

import numpy as np

from monitor import contract
from monitor.alarms.quality import longest_run_at
from monitor.alarms.rhythm import steadiness
from monitor.alarms.settings import AlarmSettings
from monitor.signal.detect import QRSDetector
from monitor.signal.resample import resample

#: Seconds of detected R-peaks looked at ...
WINDOW_S = 8.0
#: ... after this much signal for the detector to learn the lead's levels.
LEARN_S = 4.0
#: A steady train: at least this many R-peaks in the window ...
STEADY_BEATS = 4
#: ... whose intervals vary less than this (sinus arrhythmia and the odd ectopic pass; noise
#: and fibrillation do not) ...
STEADY_CV = 0.25
#: ... at a rate a heart beats with an organised rhythm.
RATE_BPM = (30.0, 200.0)


class OtherLead:
    """The last seconds of one other lead, fed in step with the analysed lead."""

    def __init__(self, fs: float, settings: AlarmSettings) -> None:
        self.fs = fs
        self.settings = settings
        self._keep = round((WINDOW_S + LEARN_S) * fs)
        self._ring = np.zeros(0)
        self._end_time = 0.0  # stream time just after the last sample
        self._asked: tuple[float, bool] | None = None

    def feed(self, x: np.ndarray, time: float) -> None:
        """Samples starting at stream `time`."""
        self._ring = np.concatenate([self._ring, x])[-self._keep :]
        self._end_time = time + len(x) / self.fs

    def shows_beats(self, time: float) -> bool:
        """Whether this lead showed a beating heart in the `WINDOW_S` before `time`."""
        if self._asked is not None and self._asked[0] == time:
            return self._asked[1]
        answer = self._steady_train(time)
        self._asked = (time, answer)
        return answer

    def _steady_train(self, time: float) -> bool:
        s = self.settings
        flat_n = max(2, round(s.flat_s * self.fs))
        x = self._ring
        if len(x) < self._keep or float(np.ptp(x[-flat_n:])) < s.flat_ptp_mv:
            return False
        top, bottom = float(x.max()), float(x.min())
        clip = max(2, round(s.saturation_run_s * self.fs))
        if max(longest_run_at(x, top), longest_run_at(x, bottom)) >= clip:
            return False
        detector = QRSDetector(contract.FS, learn_s=LEARN_S)
        x125 = resample(x, self.fs, contract.FS)
        peaks = np.asarray([*detector.feed(x125), *detector.flush()], dtype=np.float64)
        start = self._end_time - len(x) / self.fs
        beats = start + peaks / contract.FS
        recent = beats[(beats > time - WINDOW_S) & (beats <= time)]
        if len(recent) < STEADY_BEATS:
            return False
        cv, rate = steadiness(recent)
        return cv < STEADY_CV and RATE_BPM[0] <= rate <= RATE_BPM[1]
