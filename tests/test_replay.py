"""The bedside simulator's planning, pacing, chunking and noise, without a broker."""

from __future__ import annotations

import itertools
import json
import threading
import time

import numpy as np
import pytest

from monitor.errors import InputError
from monitor.validate import parse_chunk
from simulators.noise import NoiseSpec, load_noise, noise_gain, qrs_amplitude
from simulators.replay import (
    BedPlan,
    BedStream,
    bed_names,
    next_chunk,
    plan_beds,
    reference_labels,
    send_time,
)

T0 = 1_700_000_000.0


def test_bed_names_sort_and_widen_with_the_count():
    assert bed_names(3) == ["bed-01", "bed-02", "bed-03"]
    assert bed_names(120)[0] == "bed-001" and bed_names(120)[-1] == "bed-120"
    with pytest.raises(InputError, match="--beds"):
        bed_names(0)


def test_beds_cycle_through_records_from_seeded_random_offsets():
    lengths, fs = {"100": 650_000, "213": 650_000}, {"100": 360.0, "213": 360.0}
    plans = plan_beds(5, ["100", "213"], lengths, 0.25, seed=7, fs=fs, noise_len=1000)
    assert [p.record for p in plans] == ["100", "213", "100", "213", "100"]
    assert plans == plan_beds(5, ["100", "213"], lengths, 0.25, seed=7, fs=fs, noise_len=1000)
    assert plans != plan_beds(5, ["100", "213"], lengths, 0.25, seed=8, fs=fs, noise_len=1000)
    assert all(0 <= p.offset < 650_000 and 0 <= p.noise_offset < 1000 for p in plans)
    assert len({p.offset for p in plans}) == 5
    # Send times are spread over one chunk period.
    assert [p.phase_s for p in plans] == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])


def test_a_fixed_start_puts_every_bed_at_the_same_second():
    plans = plan_beds(2, ["100"], {"100": 3600}, 0.25, 0, {"100": 360.0}, start_s=2.0)
    assert [p.offset for p in plans] == [720, 720]
    with pytest.raises(InputError, match="outside record 100"):
        plan_beds(1, ["100"], {"100": 3600}, 0.25, 0, {"100": 360.0}, start_s=10.0)


def test_chunks_stop_at_the_end_of_the_record_and_loop():
    assert next_chunk(0, 90, 1000) == (0, 90)
    assert next_chunk(950, 90, 1000) == (950, 1000)
    assert next_chunk(1000, 90, 1000) == (0, 90)


def test_pacing_sends_a_chunk_when_its_last_sample_is_acquired():
    assert send_time(T0, 0.1, 0.25, speed=1.0) == pytest.approx(T0 + 0.35)
    assert send_time(T0, 0.1, 0.25, speed=2.0) == pytest.approx(T0 + 0.175)
    assert send_time(T0, 0.1, 0.25, speed=0.0) == 0.0  # as fast as possible


def _stream(**kw) -> BedStream:
    signal = np.round(np.sin(np.arange(1000) / 10.0), 3)
    plan = BedPlan("bed-02", "100", offset=kw.pop("offset", 900), noise_offset=0, phase_s=0.1)
    defaults = dict(
        fs=360.0,
        signal=signal,
        ann_index=np.array([10, 950, 1000 + 10]),
        ann_symbol=np.array(["N", "V", "A"], dtype=object),
        noise=None,
        noise_gain=0.0,
        chunk_s=0.25,
    )
    return BedStream(plan, **{**defaults, **kw})


def test_a_stream_sends_valid_chunks_that_loop_with_a_continuous_clock():
    bed = _stream()
    sent = [bed.take(T0, reference=False) for _ in range(3)]
    chunks = [parse_chunk(msgs[0][2], msgs[0][1]) for msgs in sent]
    assert [m[0][0] for m in sent] == ["ecg.samples"] * 3
    assert [(c.start_index, c.end_index) for c in chunks] == [(900, 990), (990, 1000), (0, 90)]
    assert chunks[0].start_time == pytest.approx(T0 + 0.1)
    for a, b in itertools.pairwise(chunks):
        assert b.start_time == pytest.approx(a.end_time)  # the clock runs on across the loop
    np.testing.assert_array_equal(chunks[0].samples, bed.signal[900:990])
    assert bed.due(T0, speed=1.0) == pytest.approx(T0 + 0.1 + (190 + 90) / 360.0)


def test_reference_beats_travel_with_their_chunk_at_their_own_time():
    bed = _stream()
    msgs = bed.take(T0, reference=True) + bed.take(T0, reference=True)
    refs = [json.loads(v) for topic, _, v in msgs if topic == "ecg.reference"]
    assert [(r["index"], r["symbol"], r["label"]) for r in refs] == [(950, "V", "V")]
    assert refs[0]["time"] == pytest.approx(T0 + 0.1 + 50 / 360.0)
    assert refs[0]["bed"] == "bed-02" and refs[0]["record"] == "100"


def test_a_duration_ends_the_stream():
    bed = _stream(duration_s=0.3)
    sizes = []
    while msgs := bed.take(T0, reference=False):
        sizes.append(len(json.loads(msgs[0][2])["samples"]))
    assert sum(sizes) == 108  # 0.3 s at 360 Hz


def test_noise_is_added_from_the_noise_record_with_its_gain():
    noise = np.linspace(-1, 1, 50)
    bed = _stream(noise=noise, noise_gain=0.5, offset=0)
    value = json.loads(bed.take(T0, reference=False)[0][2])
    expected = bed.signal[:90] + 0.5 * noise[np.arange(90) % 50]
    np.testing.assert_allclose(value["samples"], expected, atol=5e-5)


def test_every_lead_travels_in_the_chunk_with_the_same_noise():
    noise = np.linspace(-1, 1, 50)
    other = np.round(np.cos(np.arange(1000) / 10.0), 3)
    bed = _stream(noise=noise, noise_gain=0.5, offset=0, others=(other,))
    msgs = bed.take(T0, reference=False)
    chunk = parse_chunk(msgs[0][2], msgs[0][1])
    assert len(chunk.others) == 1
    np.testing.assert_allclose(chunk.others[0], other[:90] + 0.5 * noise[np.arange(90) % 50],
                               atol=5e-5)  # fmt: skip
    assert "leads" in json.loads(_stream().take(T0, reference=False)[0][2])  # null: one lead


def test_the_simulator_reads_both_mitdb_leads_unless_told_one(mitdb_dir):
    from simulators.replay import _parser, build_beds

    args = ["--beds", "1", "--records", "100", "--data-dir", str(mitdb_dir)]
    assert len(build_beds(_parser().parse_args(args))[0].others) == 1
    assert build_beds(_parser().parse_args([*args, "--leads", "one"]))[0].others == ()


def test_noise_gain_meets_the_nst_snr_definition():
    fs = 360.0
    t = np.arange(int(60 * fs)) / fs
    ecg = np.where((t % 0.8) < 0.02, 1.5, 0.0) - 0.3  # 1.5 mV peak-to-peak "QRS" every 0.8 s
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.2, len(t))
    assert qrs_amplitude(ecg, fs) == pytest.approx(1.5)
    for snr_db in (12.0, 6.0, 0.0, -6.0):
        gain = noise_gain(ecg, noise, fs, snr_db)
        achieved = 10 * np.log10((1.5**2 / 8) / np.var(gain * noise))
        assert achieved == pytest.approx(snr_db, abs=1e-9)
    assert noise_gain(ecg, noise, fs, 0.0) > noise_gain(ecg, noise, fs, 6.0)


def test_noise_spec_is_parsed_or_refused_in_one_sentence():
    assert NoiseSpec.parse("em:6") == NoiseSpec("em", 6.0)
    assert NoiseSpec.parse("ma:-3") == NoiseSpec("ma", -3.0)
    for bad in ("em", "xx:6", "em:loud", "bw:nan"):
        with pytest.raises(InputError, match="--noise"):
            NoiseSpec.parse(bad)


def test_reference_labels_leave_out_rhythm_and_noise_marks(mitdb_dir):
    index, symbol = reference_labels("100", mitdb_dir)
    assert len(index) == 2273  # MIT-BIH 100: 2273 beats, plus rhythm and other marks
    assert np.all(np.diff(index) > 0)
    assert set(symbol) == {"N", "A", "V"}


def test_nstdb_noise_is_read_mean_free_and_resampled(nstdb_dir):
    noise = load_noise("em", 360.0, nstdb_dir)
    assert len(noise) == 650_000  # 30 min at 360 Hz
    assert abs(noise.mean()) < 1e-9 and noise.std() > 0.01
    assert len(load_noise("em", 250.0, nstdb_dir)) == pytest.approx(650_000 * 250 / 360, abs=2)


@pytest.mark.kafka
def test_undelivered_chunks_are_counted_and_said_when_the_broker_goes(kafka_broker, caplog):
    """With the broker gone the simulator must not drop data silently: it counts what the broker
    never took, logs it, and its command exits non-zero."""
    import logging

    from simulators.replay import Replay, make_producer

    producer = make_producer(kafka_broker.bootstrap, delivery_timeout_s=2.0)
    replay = Replay(producer, [_stream()], speed=0.0, reference=False)

    def run_for(seconds: float) -> None:
        stopper = threading.Timer(seconds, replay.stop.set)
        stopper.start()
        replay.run()
        stopper.join()
        replay.stop.clear()

    run_for(0.5)
    producer.flush(timeout=10)
    assert replay.delivered == replay.chunks_sent > 0 and replay.failed == 0
    kafka_broker.stop()
    with caplog.at_level(logging.ERROR, logger="simulators.replay"):
        run_for(0.5)
        producer.flush(timeout=10)
        deadline = time.monotonic() + 15
        while replay.failed == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
    producer.close(timeout=1)
    assert replay.failed > 0 and replay.delivered + replay.failed <= replay.chunks_sent
    assert "not delivered" in caplog.text and replay.last_error
