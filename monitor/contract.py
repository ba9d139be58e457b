"""The beat contract: the one definition of "a beat" shared by trainer, stream agent and tools.

Everything that decides what the model sees lives here as data, so that the exported TorchScript
file can carry it and a loader can refuse a file cut by different rules.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

#: Sampling rate of every beat the model sees (Kachuee et al. 2018 / Kaggle "ECG Heartbeat
#: Categorization": MIT-BIH MLII resampled to 125 Hz).
FS = 125.0
#: Samples per beat (1.496 s at 125 Hz), zero-padded after the 1.2 x RR window.
BEAT_LEN = 187
#: Window after the R-peak, in multiples of the recent median RR (Kachuee et al. 2018).
WINDOW_RR = 1.2
#: Number of recent RR intervals whose median is the patient's "local" rhythm.
LOCAL_RR_BEATS = 8
#: Lowest source sampling rate accepted: QRS energy reaches ~40 Hz.
MIN_SOURCE_FS = 100.0

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

#: RR features joined to the waveform, in this order. Ratios make them comparable across
#: patients; the flag lets a beat without rhythm context (a Kaggle CSV row) still be classified.
RR_FEATURES: tuple[str, ...] = ("rr_prev_ratio", "rr_next_ratio", "rr_local_s", "rr_available")
#: What a beat without rhythm context carries instead of measured RR features.
RR_UNAVAILABLE: tuple[float, ...] = (1.0, 1.0, 0.8, 0.0)

NORMALISATION = (
    "resampled lead at 125 Hz, window from the R-peak of 1.2 x median of the last 8 RR, "
    "min-max scaled to [0, 1], zero-padded to 187"
)


def aami_class(symbol: str) -> str | None:
    """AAMI class of a MIT-BIH annotation symbol, or None for non-beat annotations."""
    return AAMI_MAP.get(symbol)


@dataclass(frozen=True)
class BeatContract:
    """What a model file promises about its inputs and outputs.

    Two contracts are compatible when every field except the provenance fields matches; the
    provenance (version, split, data hash) is information for people, not a compatibility rule.
    """

    fs: float = FS
    beat_len: int = BEAT_LEN
    classes: tuple[str, ...] = CLASSES
    normalisation: str = NORMALISATION
    rr_features: tuple[str, ...] = RR_FEATURES
    model_version: str = "unversioned"
    data_split: str = "unknown"
    data_hash: str = "unknown"
    extra: dict[str, str] = field(default_factory=dict)

    PROVENANCE = ("model_version", "data_split", "data_hash", "extra")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["rr_features"] = list(self.rr_features)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> BeatContract:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        for key in ("classes", "rr_features"):
            if key in known:
                known[key] = tuple(known[key])
        if "fs" in known:
            known["fs"] = float(known["fs"])
        if "beat_len" in known:
            known["beat_len"] = int(known["beat_len"])
        return cls(**known)

    def mismatches(self, other: BeatContract) -> list[str]:
        """Human-readable differences that make `other` unusable where `self` is expected."""
        out = []
        for name in self.__dataclass_fields__:
            if name in self.PROVENANCE:
                continue
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                out.append(f"{name}: expected {mine!r}, file has {theirs!r}")
        return out


#: The contract this code base cuts beats by.
CURRENT = BeatContract()
