import json
import struct

import mujoco
import numpy as np
import pytest

from ogi.replay import Recording, RecordingError, replay_check
from ogi.replay import format as fmt
from tests.replay.conftest import NUM_SIMS, RECORDED_STEPS


def test_round_trip_preserves_every_step_field(recorded):
    recording = Recording(recorded["path"])
    seen = recorded["seen"]
    assert recording.num_steps == RECORDED_STEPS and recording.num_sims == NUM_SIMS
    arrays = recording.arrays()
    assert arrays["step"][:, 0].tolist() == list(range(RECORDED_STEPS))
    np.testing.assert_array_equal(arrays["command"], np.stack(seen["command"]))
    np.testing.assert_array_equal(arrays["reward"], np.stack(seen["reward"]))
    np.testing.assert_array_equal(arrays["terminated"].astype(bool), np.stack(seen["terminated"]))
    np.testing.assert_array_equal(arrays["truncated"].astype(bool), np.stack(seen["truncated"]))
    term = recording.reward_terms.index("reward/tracking_lin_vel")
    np.testing.assert_array_equal(arrays["reward_terms"][:, :, term], np.stack(seen["tracking_lin_vel"]))
    # the reward is the sum of its logged terms (termination is added after the clip, both logged)
    np.testing.assert_allclose(arrays["reward_terms"].sum(axis=2), arrays["reward"], atol=1e-12)
    for name in ("qpos", "qvel"):
        steps = [s for s, _ in seen[name]]
        np.testing.assert_array_equal(arrays[name][steps], np.stack([v for _, v in seen[name]]))
    assert arrays["time"].shape == (RECORDED_STEPS, NUM_SIMS)
    assert arrays["foot_contact"].shape == (RECORDED_STEPS, NUM_SIMS, 4) and arrays["foot_contact"].max() == 1
    assert (arrays["terrain"] == -1).all()  # flat ground: no tile


def test_header_model_and_events(recorded):
    recording = Recording(recorded["path"])
    info = recording.info
    assert info["mujoco_version"] == mujoco.__version__ and info["source"] == "test"
    assert info["substeps"] == 10 and info["ctrl_dt_s"] == 0.02
    assert recording.base_model().nq == info["nq"]
    # randomization gave every simulation its own masses and gains
    masses = recording.initial_model_rows["body_mass"]
    assert masses.shape[0] == NUM_SIMS and len({m.tobytes() for m in masses}) == NUM_SIMS
    kinds = {(e["kind"], e["cause"]) for e in recording.events}
    assert ("push", "randomization") in kinds and ("reset", "time_limit") in kinds
    pushes = sum(p.sum() for p in recorded["seen"]["pushed"])
    assert sum(e["kind"] == "push" for e in recording.events) == pushes
    safety = [e for e in recording.events if e["kind"] == "safety"]
    assert safety == [
        {"step": 501, "time_s": 501 * 0.02, "sim": 1, "kind": "safety", "cause": "test_stop", "data": {"limit": 1.5}}
    ]


def test_recording_streams_while_running(recorded):
    # the file grows as steps come (chunks are written out), it is not held until close
    sizes = recorded["sizes"]
    assert sizes == sorted(sizes) and len(set(sizes)) >= 3


def test_array_codecs_round_trip():
    arrays = {
        "a": np.arange(6, dtype=np.float64).reshape(2, 3),
        "b": np.array([1, 2], dtype=np.int32),
        "c": np.zeros((2, 0)),
    }
    meta, back = fmt.unpack_arrays(fmt.pack_arrays({"step": 4}, arrays), "test")
    assert meta == {"step": 4}
    for key in arrays:
        np.testing.assert_array_equal(back[key], arrays[key])
        assert back[key].dtype == arrays[key].dtype
    with pytest.raises(RecordingError, match="ends inside array 'b'"):
        fmt.unpack_fixed(fmt.layout_of(arrays), fmt.pack_fixed(arrays)[:-3], "test")
    with pytest.raises(RecordingError, match="malformed header"):
        fmt.unpack_arrays(struct.pack("<I", 2) + b"{]", "test")


def test_state_columns_match_mujoco_state_layout():
    model = mujoco.MjModel.from_xml_string(
        "<mujoco><worldbody><body><freejoint/><geom size='.1'/></body></worldbody>"
        "<actuator><motor joint='' /></actuator></mujoco>".replace("<actuator><motor joint='' /></actuator>", "")
    )
    data = mujoco.MjData(model)
    data.xfrc_applied[1] = [1, 2, 3, 4, 5, 6]
    data.qpos[:] = np.arange(7) + 10
    row = np.empty(mujoco.mj_stateSize(model, fmt.STATE_SIG))
    mujoco.mj_getState(model, data, row, fmt.STATE_SIG)
    np.testing.assert_array_equal(
        row[fmt.state_columns(model, mujoco.mjtState.mjSTATE_XFRC_APPLIED)][6:], [1, 2, 3, 4, 5, 6]
    )
    np.testing.assert_array_equal(row[fmt.state_columns(model, mujoco.mjtState.mjSTATE_QPOS)], np.arange(7) + 10)


# ---- bad files ----------------------------------------------------------------------------------------
def test_truncated_file_is_a_clear_error(recorded, tmp_path):
    data = recorded["path"].read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 20):
        bad = tmp_path / f"cut{cut}.mcap"
        bad.write_bytes(data[:cut])
        with pytest.raises(RecordingError, match="truncated|corrupt"):
            Recording(bad)


def test_corrupted_bytes_are_a_clear_error(recorded, tmp_path):
    data = bytearray(recorded["path"].read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    bad = tmp_path / "flipped.mcap"
    bad.write_bytes(bytes(data))
    with pytest.raises(RecordingError):
        Recording(bad)
    not_mcap = tmp_path / "text.mcap"
    not_mcap.write_text("hello")
    with pytest.raises(RecordingError, match="corrupt|truncated"):
        Recording(not_mcap)
    with pytest.raises(RecordingError, match="no such file"):
        Recording(tmp_path / "missing.mcap")


def _rewrite(source, target, *, xml_edit=None, info_edit=None):
    """Copy a recording record by record, editing the model attachment or the header message."""
    from mcap.records import Attachment, Channel, Header, Message, Schema
    from mcap.stream_reader import StreamReader
    from mcap.writer import Writer

    with open(source, "rb") as f_in, open(target, "wb") as f_out:
        writer = Writer(f_out)
        channels: dict[int, int] = {}
        schemas: dict[int, int] = {0: 0}
        for record in StreamReader(f_in).records:
            if isinstance(record, Header):
                writer.start(record.profile, record.library)
            elif isinstance(record, Schema):
                schemas[record.id] = writer.register_schema(record.name, record.encoding, record.data)
            elif isinstance(record, Channel):
                channels[record.id] = writer.register_channel(
                    record.topic, record.message_encoding, schemas[record.schema_id], record.metadata
                )
            elif isinstance(record, Attachment):
                data = record.data.decode()
                writer.add_attachment(
                    0, 0, record.name, record.media_type, (xml_edit(data) if xml_edit else data).encode()
                )
            elif isinstance(record, Message):
                data = record.data
                if record.log_time == 0 and info_edit and data[:1] == b"{" and b'"format"' in data[:40]:
                    data = json.dumps(info_edit(json.loads(data))).encode()
                writer.add_message(
                    channels[record.channel_id], record.log_time, data, record.publish_time, record.sequence
                )
        writer.finish()


def test_model_hash_mismatch_is_refused(recorded, tmp_path):
    bad = tmp_path / "other_model.mcap"
    _rewrite(recorded["path"], bad, xml_edit=lambda xml: xml.replace("<mujoco", "<mujoco ", 1))
    with pytest.raises(RecordingError, match="model hash mismatch"):
        Recording(bad)


def test_newer_format_is_refused(recorded, tmp_path):
    bad = tmp_path / "future.mcap"
    _rewrite(recorded["path"], bad, info_edit=lambda info: dict(info, format_version=fmt.FORMAT_VERSION + 1))
    with pytest.raises(RecordingError, match="newer than this reader"):
        Recording(bad)
    same = tmp_path / "same.mcap"
    _rewrite(recorded["path"], same)
    assert Recording(same).num_steps == RECORDED_STEPS


def test_unknown_simulation_is_a_clear_error(recorded):
    with pytest.raises(RecordingError, match="simulation 7 is not in the recording"):
        replay_check(Recording(recorded["path"]), sims=[7])
