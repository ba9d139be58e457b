"""The beat contract: the one definition of "a beat" shared by trainer, stream agent and tools.

Everything that decides what the model sees lives here as data, so that the exported TorchScript
file can carry it and a loader can refuse a file cut by different rules. Version 2 adds the
patient context the per-bed core computes causally (`monitor.context`): RR intervals relative to
a long-term baseline, the bed's dominant-beat template and how the beat compares with it, and a
morphology window that starts before the R-peak (the beat's own P wave). A model names which of
those inputs it uses. Version 3 chooses the dominant template among families of templates of a
similar QRS width, so a patient's normal beats split over several templates still outweigh one
frequent ectopic shape. The first channel is always the 187-sample Kachuee beat, so a Kaggle CSV
row is a valid input with every context input marked absent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

#: Version of the rules below; a model exported under another version is refused.
VERSION = 3

#: Sampling rate of every beat the model sees (Kachuee et al. 2018 / Kaggle "ECG Heartbeat
#: Categorization": MIT-BIH MLII resampled to 125 Hz).
FS = 125.0
#: Samples per beat (1.496 s at 125 Hz), zero-padded after the 1.2 x RR window.
BEAT_LEN = 187
#: Window after the R-peak, in multiples of the recent median RR (Kachuee et al. 2018).
WINDOW_RR = 1.2
#: Number of recent RR intervals whose median is the patient's "local" rhythm.
LOCAL_RR_BEATS = 8
#: Number of recent RR intervals whose histogram entropy and turning points say whether the
#: rhythm is atrial fibrillation (the alarm engine's AF window; Dash et al. 2009).
AF_RR_BEATS = 32
#: Lowest source sampling rate accepted: QRS energy reaches ~40 Hz.
MIN_SOURCE_FS = 100.0

#: The patient's long-term rhythm: mean of the RR intervals that ended in the trailing window.
#: A mean, not a median: where ectopic beats are the majority (MIT-BIH 232) a median follows them.
LONG_RR_S = 300.0
#: Morphology window around the R-peak, seconds before and after: P wave to T wave. The end is
#: always in the buffer when a beat is otherwise complete (next R-peak + detector look-ahead),
#: so the window never makes a beat wait.
MORPH_PRE_S = 0.3
MORPH_POST_S = 0.45
#: QRS part of the morphology window, seconds before and after the R-peak: what templates match.
QRS_PRE_S = 0.08
QRS_POST_S = 0.12
#: Samples the R-peak may be re-aligned (each way) when a beat is compared with a template.
ALIGN_SAMPLES = 2
#: Dominant-beat learning (OSEA-style incremental templates, no model labels involved): a beat
#: joins the template it matches best when the QRS correlation reaches TEMPLATE_MATCH_CORR and
#: the QRS amplitude is within a factor TEMPLATE_MATCH_AMP; templates average their last
#: TEMPLATE_AVERAGE beats; each template's score decays by TEMPLATE_DECAY per beat (a memory of
#: about a hundred beats); templates whose QRS widths are within a factor TEMPLATE_FAMILY_WIDTH
#: form a family and pool their scores, and the dominant template is the best of the narrowest
#: family scoring at least TEMPLATE_CANDIDATE of the best family; the template inputs are absent
#: until it has learned from TEMPLATE_LEARN beats.
TEMPLATE_SLOTS = 8
TEMPLATE_MATCH_CORR = 0.9
TEMPLATE_MATCH_AMP = 1.5
TEMPLATE_AVERAGE = 16
TEMPLATE_DECAY = 0.99
TEMPLATE_CANDIDATE = 0.6
TEMPLATE_FAMILY_WIDTH = 1.5
TEMPLATE_LEARN = 8

#: The five AAMI EC57 heartbeat classes, in the order of the model's outputs.
CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")
CLASS_NAMES = {
    "N": "normal / bundle branch block",
    "S": "supraventricular ectopic",
    "V": "ventricular ectopic",
    "F": "fusion",
    "Q": "paced / unclassifiable",
}

#: MIT-BIH beat symbols to AAMI classes (ANSI/AAMI EC57; de Chazal et al. 2004).
AAMI_MAP: dict[str, str] = {
    **dict.fromkeys("NLRej", "N"),
    **dict.fromkeys("AaJS", "S"),
    **dict.fromkeys("VE", "V"),
    "F": "F",
    **dict.fromkeys("/fQ", "Q"),
}

#: Every context feature the per-bed core computes, with the value a beat carries when the
#: feature is absent (a Kaggle row; the template before it is learned). Ratios make them
#: comparable across patients; log2 ratios keep "twice" and "half" symmetric.
FEATURES: dict[str, float] = {
    # local rhythm: previous and next RR over the median of the last LOCAL_RR_BEATS RR
    "rr_prev_ratio": 1.0,
    "rr_next_ratio": 1.0,
    "rr_local_s": 0.8,
    "rr_available": 0.0,
    # long-term rhythm: over the mean RR of the trailing LONG_RR_S
    "rr_prev_long": 1.0,
    "rr_next_long": 1.0,
    "rr_local_long": 1.0,
    # rhythm regularity: median successive RR change (lag 1 or 2) over the local median RR
    "rr_irregularity": 0.0,
    # atrial-fibrillation evidence over the last AF_RR_BEATS RR (the extreme 1/16 trimmed each
    # way): histogram entropy (flat in AF, a few peaks with ectopy) and the share of turning
    # points (2/3 for a random sequence, high for bigeminy, low for slow changes)
    "rr_entropy": 0.0,
    "rr_turning": 0.0,
    # the beat against the bed's dominant template (QRS part, re-aligned)
    "template_available": 0.0,
    "template_corr": 1.0,
    "template_corr_wide": 1.0,
    "amp_log2": 0.0,
    "width_log2": 0.0,
    "residual": 0.0,
    # how common the beat's own morphology is on this bed (score share of its template)
    "cluster_share": 1.0,
    # the atrial part (R-peak - MORPH_PRE_S to the QRS) against the dominant template's: the
    # P wave of this beat, and whether the patient's beats have a consistent P wave at all
    "p_corr": 1.0,
    "p_coherence": 1.0,
}
#: Every waveform channel the per-bed core cuts, each BEAT_LEN samples long:
#: - beat: the Kachuee beat (always the first channel of a model);
#: - morph: the morphology window (P wave to T wave), scaled by the dominant template's QRS
#:   range so amplitude stays relative to the patient, zero-padded;
#: - template: the dominant template in the same window and scale (zero when not learned).
CHANNELS: tuple[str, ...] = ("beat", "morph", "template")

#: Feature groups, by what they are: what the ablation adds group by group.
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "rr_local": ("rr_prev_ratio", "rr_next_ratio", "rr_local_s", "rr_available"),
    "rr_long": ("rr_prev_long", "rr_next_long", "rr_local_long"),
    "rhythm": ("rr_irregularity",),
    "af": ("rr_entropy", "rr_turning"),
    "template": (
        "template_available", "template_corr", "template_corr_wide", "amp_log2", "width_log2",
        "residual", "cluster_share",
    ),
    "pwave": ("p_corr", "p_coherence"),
}  # fmt: skip

#: The features `BeatContract.af_gate` thresholds, in its order (`monitor.decision`).
AF_GATE_FEATURES = ("rr_entropy", "rr_turning", "rr_irregularity")
#: The features `BeatContract.dominant_gate` reads: its two thresholds are on the first and
#: the last, and the rule holds only where the template is learned (`monitor.decision`).
DOMINANT_GATE_FEATURES = ("rr_prev_long", "template_available", "template_corr")
#: The features `BeatContract.s_gate` reads: its threshold is on the second.
S_GATE_FEATURES = ("template_available", "rr_prev_long")
#: The features `BeatContract.af_v_gate` reads: the AF gate's test of fibrillation, then its
#: two thresholds on the last two, where the template is learned.
AF_V_GATE_FEATURES = (*AF_GATE_FEATURES, "template_available", "template_corr", "p_coherence")
#: The features `BeatContract.premature_s_gate` reads: the AF gate's test of fibrillation, then
#: its first three thresholds on the last three, where the template is learned.
PREMATURE_S_GATE_FEATURES = (
    *AF_GATE_FEATURES, "template_available", "rr_prev_long", "template_corr", "p_coherence",
)
#: The features `BeatContract.wide_qrs_gate` reads: its three thresholds are on the last three,
#: where the template is learned.
WIDE_QRS_GATE_FEATURES = ("template_available", "width_log2", "rr_prev_long", "residual")
#: The features `BeatContract.unlike_s_gate` reads: its three thresholds are on the last
#: three, where the template is learned.
UNLIKE_S_GATE_FEATURES = ("template_available", "template_corr", "p_coherence", "rr_prev_long")
#: Each decision rule's contract field: how many thresholds, the features it reads, and the
#: classes besides N whose probabilities it moves (to N, for the premature S gate from N, for
#: the wide-QRS and unlike-S gates from S to V), which the model must call.
GATE_RULES: dict[str, tuple[int, tuple[str, ...], tuple[str, ...]]] = {
    "af_gate": (4, AF_GATE_FEATURES, ("S",)),
    "dominant_gate": (2, DOMINANT_GATE_FEATURES, ("V",)),
    "s_gate": (1, S_GATE_FEATURES, ("S",)),
    "af_v_gate": (2, AF_V_GATE_FEATURES, ("V",)),
    "premature_s_gate": (4, PREMATURE_S_GATE_FEATURES, ("S",)),
    "wide_qrs_gate": (3, WIDE_QRS_GATE_FEATURES, ("S", "V")),
    "unlike_s_gate": (3, UNLIKE_S_GATE_FEATURES, ("S", "V")),
}
#: Rules that gained a threshold after files carrying them were written, and the count those
#: files carry: such a file is served as it was cut, without the later threshold's guard.
EARLIER_GATE_COUNTS: dict[str, int] = {"wide_qrs_gate": 2}


def aami_class(symbol: str) -> str | None:
    """AAMI class of a MIT-BIH annotation symbol, or None for non-beat annotations."""
    return AAMI_MAP.get(symbol)


def samples(seconds: float) -> int:
    """Seconds at the model's 125 Hz, in whole samples."""
    return round(seconds * FS)


#: Length of the morphology window and position of the R-peak in it, at 125 Hz.
MORPH_LEN = samples(MORPH_PRE_S) + samples(MORPH_POST_S)
MORPH_R = samples(MORPH_PRE_S)


@dataclass(frozen=True)
class BeatContract:
    """What a model file promises about its inputs and outputs.

    Every rule that shapes an input is a field, so a changed constant refuses an old model.
    Two contracts are compatible when every field except the provenance fields matches; the
    provenance (version, split, data hash) is information for people, not a compatibility rule.
    `channels` and `features` say which of the core's inputs the model reads, in order.
    """

    contract_version: int = VERSION
    fs: float = FS
    beat_len: int = BEAT_LEN
    window_rr: float = WINDOW_RR
    local_rr_beats: int = LOCAL_RR_BEATS
    af_rr_beats: int = AF_RR_BEATS
    long_rr_s: float = LONG_RR_S
    morph_pre_s: float = MORPH_PRE_S
    morph_post_s: float = MORPH_POST_S
    qrs_pre_s: float = QRS_PRE_S
    qrs_post_s: float = QRS_POST_S
    align_samples: int = ALIGN_SAMPLES
    template_slots: int = TEMPLATE_SLOTS
    template_match_corr: float = TEMPLATE_MATCH_CORR
    template_match_amp: float = TEMPLATE_MATCH_AMP
    template_average: int = TEMPLATE_AVERAGE
    template_decay: float = TEMPLATE_DECAY
    template_candidate: float = TEMPLATE_CANDIDATE
    template_family_width: float = TEMPLATE_FAMILY_WIDTH
    template_learn: int = TEMPLATE_LEARN
    classes: tuple[str, ...] = CLASSES
    channels: tuple[str, ...] = ("beat",)
    features: tuple[str, ...] = FEATURE_GROUPS["rr_local"]
    #: Beats before this one whose context features the model also reads (0: this beat only).
    sequence: int = 0
    #: The decision rule after the network (`monitor.decision`): thresholds on this beat's
    #: RR entropy (at least), turning-point share (between two) and irregularity (at least)
    #: above which its S probability goes to N; empty: the network's answer as it is.
    af_gate: tuple[float, ...] = ()
    #: Classes the model never calls: a beat the network calls one of them is reported N
    #: (`monitor.decision.report_as_n`); empty: every class as the network answers.
    report_as_n: tuple[str, ...] = ()
    #: The decision rule for V calls (`monitor.decision.gate_dominant`): a beat called V whose
    #: previous RR is at least the first threshold times the long-term mean RR and whose QRS
    #: correlates with the dominant template at least the second is reported N; empty: the
    #: network's V calls as they are.
    dominant_gate: tuple[float, ...] = ()
    #: The decision rule for S calls (`monitor.decision.gate_s`): a beat called S whose previous
    #: RR is at least the threshold times the long-term mean RR is reported N; empty: the
    #: network's S calls as they are.
    s_gate: tuple[float, ...] = ()
    #: The decision rule for V calls in fibrillation (`monitor.decision.gate_af_v`): a beat
    #: called V that is in fibrillation by `af_gate`'s test, whose QRS correlates with the
    #: dominant template at least the first threshold and whose template's P-wave coherence is
    #: below the second is reported N (it asks `af_gate` too); empty: V calls as they are.
    af_v_gate: tuple[float, ...] = ()
    #: The decision rule for N calls (`monitor.decision.gate_premature_s`): a beat called N that
    #: is not in fibrillation by `af_gate`'s test, whose previous RR is below the first
    #: threshold times the long-term mean RR, whose QRS correlates with the dominant template at
    #: least the second, whose template's P-wave coherence is at least the third and whose S
    #: probability is at least the fourth is reported S (it asks `af_gate` too); empty: N calls
    #: as they are.
    premature_s_gate: tuple[float, ...] = ()
    #: The decision rule for S calls with a wide QRS (`monitor.decision.gate_wide_qrs`): a beat
    #: called S whose QRS is wider than the dominant template's by more than the first
    #: threshold (log2 of the ratio), whose previous RR is at least the second times the
    #: long-term mean RR and whose QRS differs from the template's by a residual of at least
    #: the third is reported V (a file from before the third reads as without it); empty: S
    #: calls as they are.
    wide_qrs_gate: tuple[float, ...] = ()
    #: The decision rule for S calls unlike the dominant beat (`monitor.decision.gate_unlike_s`):
    #: a beat called S whose QRS correlates with the dominant template below the first
    #: threshold, whose template's P-wave coherence is at least the second (no fibrillation in
    #: the waveform) and whose previous RR is at least the third times the long-term mean RR is
    #: reported V; empty: S calls as they are.
    unlike_s_gate: tuple[float, ...] = ()
    model_version: str = "unversioned"
    data_split: str = "unknown"
    data_hash: str = "unknown"
    extra: dict[str, str] = field(default_factory=dict)

    PROVENANCE = ("model_version", "data_split", "data_hash", "extra")
    #: The decision rules' thresholds (tuples of floats).
    GATES = tuple(GATE_RULES)
    #: The inputs a model chooses; the loader checks them against the core, not against CURRENT.
    CHOICES = ("channels", "features", "sequence", "report_as_n", *GATES)

    def __post_init__(self) -> None:
        if not self.channels or self.channels[0] != "beat":
            raise ValueError(f"channels must start with 'beat', got {self.channels!r}")
        unknown = [c for c in self.channels if c not in CHANNELS] + [
            f for f in self.features if f not in FEATURES
        ]
        if unknown:
            raise ValueError(f"unknown channels or features: {', '.join(unknown)}")
        if self.sequence < 0:
            raise ValueError(f"sequence must be 0 or more, got {self.sequence}")
        for name, (count, reads, moves) in GATE_RULES.items():
            value = getattr(self, name)
            if value and (
                len(value) not in (count, EARLIER_GATE_COUNTS.get(name, count))
                or not set(reads) <= set(self.features)
                or not set(moves) <= set(self.classes)
            ):
                raise ValueError(
                    f"{name} must be {count} threshold(s) on a model that calls "
                    f"{' and '.join(moves)} and "
                    f"reads {', '.join(reads)}, got {value!r} with features "
                    f"{', '.join(self.features)}"
                )
        for name in ("af_v_gate", "premature_s_gate"):
            if getattr(self, name) and not self.af_gate:
                raise ValueError(f"{name} asks af_gate's test of fibrillation: give af_gate too")
        if "N" in self.report_as_n or not set(self.report_as_n) <= set(self.classes):
            raise ValueError(
                f"report_as_n takes classes of {'/'.join(self.classes)} other than N, "
                f"got {self.report_as_n!r}"
            )

    @property
    def normalisation(self) -> str:
        """The rules in words, generated from the fields."""
        return (
            f"resampled lead at {self.fs:g} Hz; beat = window from the R-peak of "
            f"{self.window_rr:g} x median of the last {self.local_rr_beats} RR, min-max scaled "
            f"to [0, 1], zero-padded to {self.beat_len}; morph = R-peak -{self.morph_pre_s:g} s "
            f"to +{self.morph_post_s:g} s less its median, over the dominant template's QRS "
            f"range; long-term RR = mean RR of the trailing {self.long_rr_s:g} s; AF evidence "
            f"over the last {self.af_rr_beats} RR; "
            f"channels {', '.join(self.channels)}; features {', '.join(self.features)}; "
            f"{self.sequence} earlier beats"
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("classes", "channels", "features", "report_as_n", *self.GATES):
            d[key] = list(d[key])
        d["normalisation"] = self.normalisation
        return d

    @classmethod
    def from_dict(cls, d: dict) -> BeatContract:
        """The contract a dict describes; a field it lacks reads as absent, not as today's."""
        known = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            value = d[f.name]
            if f.name in ("classes", "channels", "features", "report_as_n"):
                value = tuple(value)
            elif f.name in cls.GATES:
                value = tuple(float(v) for v in value)
            elif f.type == "float":
                value = float(value)
            elif f.type == "int":
                value = int(value)
            known[f.name] = value
        known.setdefault("contract_version", 1)
        return cls(**known)

    def mismatches(self, other: BeatContract) -> list[str]:
        """Human-readable differences that make `other` unusable where `self` is expected."""
        out = []
        for name in self.__dataclass_fields__:
            if name in self.PROVENANCE or name in self.CHOICES:
                continue
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                out.append(f"{name}: expected {mine!r}, file has {theirs!r}")
        return out

    def n_inputs(self) -> tuple[int, int]:
        """(channels, context values) of one beat's model input."""
        return len(self.channels), len(self.features) * (1 + self.sequence)


#: The contract this code base cuts beats by (with today's default choice of inputs).
CURRENT = BeatContract()
