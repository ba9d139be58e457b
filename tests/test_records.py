"""Lead choice by signal name and the errors a person sees for unusable records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb

from monitor.errors import InputError
from monitor.records import choose_lead, is_ecg, list_records, read_lead, resolve_mitdb


def test_choose_lead_prefers_mlii_then_lead_ii_by_name() -> None:
    assert choose_lead(["MLII", "V5"]) == 0
    assert choose_lead(["V5", "MLII"]) == 1
    assert choose_lead(["V5", "V2"]) == 0
    assert choose_lead(["I", "II", "III", "aVR"]) == 1  # a 12-lead record: lead II
    assert choose_lead(["ECG I", "ecg-ii"]) == 1
    assert choose_lead(["V", "II"], ["mV", "mV"]) == 1
    with pytest.raises(InputError, match="no signals"):
        choose_lead([])


def test_monitor_channels_that_are_not_ecg_are_never_leads() -> None:
    """ICU recordings hold pressures, pulse oximetry and respiration beside the ECG."""
    assert choose_lead(["PLETH", "V", "ABP"], ["NU", "mV", "mmHg"]) == 1
    assert choose_lead(["RESP", "aVF"]) == 1  # no units written: the name says it
    assert not is_ecg("II", "mmHg")
    assert is_ecg("V1", "uV") and is_ecg("ECG")
    with pytest.raises(InputError, match="no ECG lead among the signals ABP, PLETH"):
        choose_lead(["ABP", "PLETH"], ["mmHg", "NU"])


def test_an_icu_record_gives_its_ecg_leads_only(tmp_path: Path) -> None:
    import wfdb

    t = np.arange(5000) / 250.0
    ecg = np.sin(2 * np.pi * 1.2 * t) ** 31
    wfdb.wrsamp("icu", fs=250.0, units=["NU", "mV", "mV", "mmHg"],
                sig_name=["PLETH", "V", "II", "ABP"], p_signal=np.c_[ecg, ecg, ecg, 80 + 40 * ecg],
                fmt=["16"] * 4, write_dir=str(tmp_path))  # fmt: skip
    lead = read_lead("icu", tmp_path, others=True)
    assert lead.name == "II"
    assert len(lead.others) == 1
    assert lead.left_out == ("PLETH (not an ECG lead)", "ABP (not an ECG lead)")
    assert read_lead("icu", tmp_path).left_out == ()


@pytest.mark.parametrize(("record", "lead"), [("100", "MLII"), ("114", "MLII"), ("102", "V5")])
def test_real_records_pick_the_right_lead(mitdb_dir: Path, record: str, lead: str) -> None:
    got = read_lead(record, mitdb_dir)
    assert got.name == lead
    assert got.fs == 360.0
    assert len(got.signal) == 650_000
    assert 0.2 < np.ptp(got.signal[:3600]) < 10  # millivolts, not ADC units


def test_all_48_records_listed(mitdb_dir: Path) -> None:
    assert len(list_records(mitdb_dir)) == 48


def _write(tmp_path: Path, name: str, sig: np.ndarray, fs: float, names: list[str]) -> None:
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"] * sig.shape[1],
        sig_name=names,
        p_signal=sig,
        fmt=["16"] * sig.shape[1],
        write_dir=str(tmp_path),
    )


def test_bad_records_give_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_lead("nope", tmp_path)
    t = np.arange(2000) / 80.0
    _write(tmp_path, "slow", np.sin(t)[:, None], 80.0, ["II"])
    with pytest.raises(InputError, match="at least 100 Hz"):
        read_lead("slow", tmp_path)
    _write(tmp_path, "flat", np.zeros((3000, 1)), 250.0, ["II"])
    with pytest.raises(InputError, match="flat line"):
        read_lead("flat", tmp_path)


def test_forged_headers_are_refused_before_anything_is_allocated(tmp_path: Path) -> None:
    """A header may claim any length or rate; wfdb would allocate for it (931 GiB seen)."""
    t = np.arange(2000) / 250.0
    _write(tmp_path, "ok", np.sin(2 * t)[:, None], 250.0, ["II"])
    header = (tmp_path / "ok.hea").read_text()
    first, *rest = header.splitlines()
    _, n_sig, fs, n = first.split()[:4]
    for record, line, message in (
        ("long", f"long {n_sig} {fs} {10**12}", "the limit is 48 h"),
        ("short", f"short {n_sig} {fs} {10**7}", "the header does not match the data"),
        ("odd", f"odd {n_sig} 1000.001 {n}", "not supported"),
    ):
        (tmp_path / f"{record}.hea").write_text("\n".join([line, *rest]) + "\n")
        with pytest.raises(InputError, match=message):
            read_lead(record, tmp_path)
    assert len(read_lead("ok", tmp_path).signal) == 2000


def test_missing_data_dir_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        resolve_mitdb(tmp_path / "absent")
