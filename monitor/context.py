"""Patient context for each beat, computed causally by the per-bed core.

A beat judged alone can only be compared with the training patients. A bedside monitor compares
it with *this* patient: how early it comes against the patient's own long-term rhythm, and how
far its shape is from the patient's dominant beat. Both are learned here from the beats seen so
far, without the model's labels (so a run of ectopic beats cannot teach the template the wrong
beat), in stream order, so feeding a record whole or in chunks gives identical context.

- `LongTermRR`: mean RR of the trailing `contract.LONG_RR_S` (a mean: where ectopic beats are the
  majority, a median would follow them).
- `TemplateBank`: OSEA-style incremental templates of the QRS, matched by correlation and
  amplitude; the dominant template is the narrowest of the frequent shapes, templates of a
  similar QRS width counted together. Its atrial part (the
  window before the QRS) says whether this beat has the patient's P wave, and whether the
  patient's beats have a P wave at all: an irregular rhythm with P waves is ectopy, without
  them atrial fibrillation, where a short RR is not a premature beat.
- `PatientContext`: both, turned into the contract's feature vector and waveform channels.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from monitor import contract

#: The feature vector of a beat without any context (a Kaggle row).
ABSENT = np.array(list(contract.FEATURES.values()), dtype=np.float32)
#: Earlier beats whose context a beat carries (`Beat.previous`); a model reads up to this many.
MAX_SEQUENCE = 4
_A = contract.ALIGN_SAMPLES
_Q0 = contract.MORPH_R - contract.samples(contract.QRS_PRE_S)
_Q1 = contract.MORPH_R + contract.samples(contract.QRS_POST_S)
#: The QRS part of a morphology window: what templates match and widths are measured on.
QRS = slice(_Q0, _Q1)
#: Samples of the source window a beat's morphology is cut from, R-peak at MORPH_R + ALIGN.
EXTENDED_LEN = contract.MORPH_LEN + 2 * _A
#: Part of a window's QRS range below which the signal is "outside" the QRS (width measure).
_WIDTH_LEVEL = 0.3
_EPS = 1e-9


class LongTermRR:
    """Mean RR of the intervals that ended within the trailing `window_s` seconds."""

    def __init__(self, window_s: float = contract.LONG_RR_S) -> None:
        self.window_s = window_s
        self._rr: deque[tuple[float, float]] = deque()  # (end time s, RR s)
        self._sum = 0.0

    def add(self, end_s: float, rr: float) -> float:
        """Take the RR interval ending at `end_s`; return the trailing mean including it."""
        self._rr.append((end_s, rr))
        self._sum += rr
        while self._rr[0][0] <= end_s - self.window_s:
            self._sum -= self._rr.popleft()[1]
        return self._sum / len(self._rr)


# The per-beat work below runs for every beat of every bed, so it avoids numpy's convenience
# wrappers (mean, ptp, clip, median), whose set-up costs more than the arithmetic on ~100 samples.


def qrs_width(w: np.ndarray) -> int:
    """Samples between the first and last crossing of 30 % of the QRS range (baseline-free w)."""
    q = np.abs(w[_Q0:_Q1])
    top = q.max()
    if top <= _EPS:
        return 1
    above = (q >= _WIDTH_LEVEL * top).nonzero()[0]
    return int(above[-1] - above[0] + 1)


def qrs_residual(qrs: np.ndarray, template_qrs: np.ndarray, template_range: float) -> float:
    """Mean squared difference of two QRS parts over the template's squared QRS range: how far
    a beat's QRS is from the template's, in the patient's own scale."""
    d = qrs - template_qrs
    return float(d @ d) / (template_range * template_range * len(d))


def _unit(v: np.ndarray) -> np.ndarray:
    """`v` centred and scaled to unit norm: its dot product with a window is, divided by the
    window's own spread (`_spread`), their Pearson correlation."""
    c = v @ _CENTRE[len(v)]
    return c / (math.sqrt(float(c @ c)) + _EPS)


def _spread(m: np.ndarray) -> np.ndarray:
    """Norm of each row of `m` once centred: sqrt(sum x^2 - (sum x)^2 / n)."""
    total = m.sum(axis=-1)
    return np.sqrt(np.maximum((m * m).sum(axis=-1) - total * total / m.shape[-1], 0.0))


def _spread_1d(v: np.ndarray) -> float:
    """`_spread` of one row, in scalar arithmetic (the same operations, without array set-up)."""
    total = float(v.sum())
    return math.sqrt(max(float((v * v).sum()) - total * total / len(v), 0.0))


#: Centring matrices (x @ C == x - mean(x)) for the QRS part and the whole window.
_CENTRE = {n: np.eye(n) - 1.0 / n for n in (_Q1 - _Q0, contract.MORPH_LEN)}
_RAMP = np.stack([np.ones(_Q0), np.arange(_Q0, dtype=np.float64)], axis=1)
#: x @ _DETREND == x less its least-squares line: the atrial part (the morphology window before
#: the QRS) without the baseline's slope, which would otherwise correlate in every beat alike.
_DETREND = np.eye(_Q0) - _RAMP @ np.linalg.pinv(_RAMP)
#: Index of each re-aligned window (2 * ALIGN + 1 shifts) into a beat's extended window, and of
#: their QRS parts.
_SHIFTS = np.arange(2 * _A + 1)[:, None] + np.arange(contract.MORPH_LEN)[None, :]
_SHIFTS_QRS = _SHIFTS[:, _Q0:_Q1]
_SLOTS = np.arange(contract.TEMPLATE_SLOTS)


@dataclass(frozen=True)
class Comparison:
    """A beat against the dominant template (None where no template is learned yet)."""

    corr: float
    corr_wide: float
    amp_log2: float
    width_log2: float
    residual: float
    #: The beat's atrial part (P wave) against the template's, as a correlation.
    p_corr: float
    #: How much of the template's members' atrial energy survives their averaging: near 1 when
    #: every beat has the same P wave at the same PR interval, near 1 / TEMPLATE_AVERAGE when
    #: the atrial activity is unrelated to the QRS (fibrillatory waves, noise).
    p_coherence: float
    #: The template's QRS peak-to-peak (`comparison_range`): the patient's amplitude unit.
    template_range: float


class TemplateBank:
    """Running templates of one bed's beat shapes and which one is the dominant beat.

    Each beat is compared with the template whose QRS correlates best with it (after
    re-alignment by up to `ALIGN_SAMPLES`); it joins that template when the correlation reaches
    `TEMPLATE_MATCH_CORR` and the QRS amplitude is within a factor `TEMPLATE_MATCH_AMP`, else it
    starts a new template in the slot of the weakest. Scores decay per beat, so they count
    recent beats. The dominant template comes from the narrowest QRS family (templates of a
    similar width, scores pooled) among those scoring at least `TEMPLATE_CANDIDATE` of the best:
    in bigeminy, where normal and ventricular beats are equally frequent, the normal one wins,
    also when the normal beats are split over several templates.
    """

    def __init__(self) -> None:
        k = contract.TEMPLATE_SLOTS
        self.templates = np.zeros((k, contract.MORPH_LEN))
        #: The templates' QRS parts and whole windows as unit rows (zero rows for empty slots).
        self._unit_qrs = np.zeros((k, _Q1 - _Q0))
        self._unit_wide = np.zeros((k, contract.MORPH_LEN))
        self.count = np.zeros(k, dtype=np.int64)
        self.score = np.zeros(k)
        self.width = np.zeros(k, dtype=np.int64)
        self.range = np.zeros(k)
        #: Each template's detrended atrial part as a unit row, and its members' mean energy
        #: there (the same running average as the template).
        self._unit_p = np.zeros((k, _Q0))
        self._p_energy = np.zeros(k)
        self.p_coherence = np.zeros(k)
        self.dominant = -1
        #: Slot i's QRS family (slots i included) and its width, recomputed only when a width
        #: changes or a slot is first used; the dominant choice reads them at every beat.
        self._family = np.zeros((k, k), dtype=bool)
        self._members: list[list[int]] = [[] for _ in range(k)]
        self._width_key = [1] * k

    @property
    def learned(self) -> bool:
        return self.dominant >= 0 and self.count[self.dominant] >= contract.TEMPLATE_LEARN

    def observe(self, ext: np.ndarray) -> tuple[Comparison | None, float, np.ndarray, np.ndarray]:
        """Compare a beat with the templates learned so far, then learn from it.

        `ext` is the beat's extended window (EXTENDED_LEN samples, baseline removed). Returns the
        comparison with the dominant template (before this beat updates it), the score share of
        the template the beat matched (0 for a new shape), the beat aligned to the dominant
        template, and the dominant template itself.
        """
        beat_qrs = ext[_SHIFTS_QRS]  # (shifts, QRS samples)
        # (slots, shifts); 0 for empty slots, whose unit rows are zero.
        corr = (self._unit_qrs @ beat_qrs.T) / (_spread(beat_qrs) + _EPS)
        best_shift = corr.argmax(axis=1)
        best = corr[_SLOTS, best_shift]
        centre = beat_qrs[_A]
        beat_range = float(centre.max() - centre.min())
        j = int(best.argmax())
        amp = beat_range / max(float(self.range[j]), _EPS)
        matched = (
            self.count[j] > 0
            and best[j] >= contract.TEMPLATE_MATCH_CORR
            and amp * contract.TEMPLATE_MATCH_AMP >= 1.0
            and amp <= contract.TEMPLATE_MATCH_AMP
        )
        share = float(self.score[j] / max(float(self.score.sum()), _EPS)) if matched else 0.0
        comparison, aligned, dominant = None, ext[_SHIFTS[_A]], _NO_TEMPLATE
        if self.learned:
            k = self.dominant
            shift = int(best_shift[k])
            aligned = ext[_SHIFTS[shift]]
            dominant = self.templates[k].copy()
            comparison = self._compare(aligned, beat_qrs[shift], k, float(best[k]))
        if matched:
            self._update(j, ext[_SHIFTS[int(best_shift[j])]])
        else:
            self._start(ext[_SHIFTS[_A]])
        return comparison, share, aligned, dominant

    def _compare(self, beat: np.ndarray, qrs: np.ndarray, k: int, corr: float) -> Comparison:
        wide = float(beat @ self._unit_wide[k]) / (_spread_1d(beat) + _EPS)
        rng = max(float(self.range[k]), _EPS)
        p = _atrial(beat)
        return Comparison(
            corr=corr,
            corr_wide=wide,
            amp_log2=float(np.log2(max(float(qrs.max() - qrs.min()), _EPS) / rng)),
            width_log2=float(np.log2(qrs_width(beat) / max(int(self.width[k]), 1))),
            residual=qrs_residual(qrs, self.templates[k, QRS], rng),
            p_corr=float(p @ self._unit_p[k]) / (math.sqrt(float(p @ p)) + _EPS),
            p_coherence=float(self.p_coherence[k]),
            template_range=rng,
        )

    def _update(self, j: int, beat: np.ndarray) -> None:
        self.score *= contract.TEMPLATE_DECAY
        n = min(int(self.count[j]) + 1, contract.TEMPLATE_AVERAGE)
        self.templates[j] += (beat - self.templates[j]) / n
        self._p_energy[j] += (_p_energy(beat) - self._p_energy[j]) / n
        self._learned(j)

    def _start(self, beat: np.ndarray) -> None:
        self.score *= contract.TEMPLATE_DECAY
        j = int(np.argmin(np.where(self.count > 0, self.score, -1.0)))
        if j == self.dominant:
            self.dominant = -1
        self.templates[j] = beat
        self._p_energy[j] = _p_energy(beat)
        self.count[j] = 0
        self.score[j] = 0.0
        self._learned(j)

    def _learned(self, j: int) -> None:
        """Slot j took a beat: its count, score and shape statistics follow."""
        first = self.count[j] == 0
        self.count[j] += 1
        self.score[j] += 1.0
        t = self.templates[j]
        qrs = t[_Q0:_Q1]
        self._unit_qrs[j] = _unit(qrs)
        self._unit_wide[j] = _unit(t)
        width = qrs_width(t)
        if first or width != self.width[j]:
            self.width[j] = width
            self._families()
        self.range[j] = float(qrs.max() - qrs.min())
        p = _atrial(t)
        energy = float(p @ p)
        self._unit_p[j] = p / (math.sqrt(energy) + _EPS)
        self.p_coherence[j] = energy / (self._p_energy[j] + _EPS)
        self._choose_dominant()

    def _families(self) -> None:
        """Templates whose QRS widths are within a factor `TEMPLATE_FAMILY_WIDTH` of each
        other form a family (see `_choose_dominant`)."""
        used = self.count > 0
        width = np.maximum(self.width, 1)
        ratio = width[:, None] / width[None, :]
        self._family = (
            used[:, None] & used[None, :]
            & (ratio <= contract.TEMPLATE_FAMILY_WIDTH)
            & (ratio * contract.TEMPLATE_FAMILY_WIDTH >= 1.0)
        )  # fmt: skip
        self._members = [row.nonzero()[0].tolist() for row in self._family]
        self._width_key = width.tolist()

    def _choose_dominant(self) -> None:
        """Templates whose QRS widths are within a factor `TEMPLATE_FAMILY_WIDTH` of each other
        form a family and pool their scores: a patient's normal beats often split over several
        templates (amplitude and axis move with breathing and posture), and each alone may score
        below one frequent ectopic shape (MIT-BIH 208: its PVCs held the template for half the
        record). Of the families scoring at least `TEMPLATE_CANDIDATE` of the best, the
        narrowest wins; its best-scoring template is the dominant one, and the current one is
        kept while it is in that family and scores at least `TEMPLATE_CANDIDATE` of its best.

        Plain Python over the slots: NumPy's set-up per call costs more than eight values.
        """
        pooled = (self._family @ self.score).tolist()
        score = self.score.tolist()
        floor = contract.TEMPLATE_CANDIDATE * max(pooled)
        width = self._width_key
        # Narrowest family first, then the higher pooled score; a used slot is its own member.
        k = -1
        for i, members in enumerate(self._members):
            if members and pooled[i] >= floor and (
                k < 0 or width[i] < width[k] or (width[i] == width[k] and pooled[i] > pooled[k])
            ):
                k = i
        members = self._members[k]
        best = max(members, key=score.__getitem__)
        d = self.dominant
        if d in members and score[d] >= contract.TEMPLATE_CANDIDATE * score[best]:
            return
        self.dominant = best


def _atrial(w: np.ndarray) -> np.ndarray:
    """A morphology window's atrial part (before the QRS), less its least-squares line."""
    return w[:_Q0] @ _DETREND


def _p_energy(w: np.ndarray) -> float:
    """Energy of a morphology window's detrended atrial part."""
    p = _atrial(w)
    return float(p @ p)


_NO_TEMPLATE = np.zeros(contract.MORPH_LEN)
_NO_TEMPLATE.flags.writeable = False


def comparison_range(w: np.ndarray) -> float:
    """Peak-to-peak of the QRS part of a morphology window: the patient's amplitude unit."""
    q = w[_Q0:_Q1]
    return float(q.max() - q.min())


def _median(x: np.ndarray) -> float:
    """np.median of a 1-d array, without its ~10 us of set-up."""
    mid = len(x) // 2
    if len(x) % 2:
        return float(np.partition(x, mid)[mid])
    part = np.partition(x, (mid - 1, mid))
    return 0.5 * (float(part[mid - 1]) + float(part[mid]))


def baseline_removed(ext: np.ndarray) -> np.ndarray:
    """An extended window less the median of its morphology part: the beat's baseline."""
    return ext - _median(ext[_A : _A + contract.MORPH_LEN])


def _padded(w: np.ndarray) -> np.ndarray:
    out = np.zeros(contract.BEAT_LEN, dtype=np.float32)
    out[: len(w)] = w
    return out


@dataclass(frozen=True)
class BeatContext:
    """What the core knows about a beat beyond its own window."""

    #: One value per `contract.FEATURES` entry, in order.
    features: np.ndarray
    #: `contract.CHANNELS[1:]`: morphology window and dominant template, BEAT_LEN each.
    morph: np.ndarray
    template: np.ndarray


class PatientContext:
    """Long-term rhythm and dominant-beat template of one bed, updated beat by beat in order."""

    def __init__(self) -> None:
        self.long_rr = LongTermRR()
        self.templates = TemplateBank()

    def describe(
        self,
        ext: np.ndarray,
        rr_prev: float,
        rr_next: float,
        rr_local: float,
        rr_long: float,
        rr_irregularity: float,
        af: tuple[float, float],
    ) -> BeatContext:
        """Context of the next beat in stream order; learns from it afterwards.

        `ext` is the beat's extended window at 125 Hz (EXTENDED_LEN samples, R-peak at
        MORPH_R + ALIGN_SAMPLES) in mV; the RR values are seconds, `rr_long` the long-term mean
        when the beat's R-peak arrived; `af` the RR histogram entropy and turning-point share
        (`monitor.beats.af_evidence`).
        """
        ext = baseline_removed(ext)
        values = {
            "rr_prev_ratio": rr_prev / rr_local,
            "rr_next_ratio": rr_next / rr_local,
            "rr_local_s": rr_local,
            "rr_available": 1.0,
            "rr_prev_long": rr_prev / rr_long,
            "rr_next_long": rr_next / rr_long,
            "rr_local_long": rr_local / rr_long,
            "rr_irregularity": rr_irregularity,
            "rr_entropy": af[0],
            "rr_turning": af[1],
        }
        comparison, share, aligned, dominant = self.templates.observe(ext)
        values["cluster_share"] = share
        if comparison is not None:
            values.update(
                template_available=1.0,
                template_corr=comparison.corr,
                template_corr_wide=comparison.corr_wide,
                amp_log2=comparison.amp_log2,
                width_log2=comparison.width_log2,
                residual=comparison.residual,
                p_corr=comparison.p_corr,
                p_coherence=comparison.p_coherence,
            )
            scale = comparison.template_range
            template = _padded(dominant / scale)
        else:
            scale = max(comparison_range(aligned), _EPS)
            template = np.zeros(contract.BEAT_LEN, dtype=np.float32)
        f = np.array([values.get(k, absent) for k, absent in contract.FEATURES.items()])
        f = np.minimum(np.maximum(f, -8.0), 8.0).astype(np.float32)
        morph = _padded(np.minimum(np.maximum(aligned / scale, -4.0), 4.0))
        return BeatContext(f, morph, template)
