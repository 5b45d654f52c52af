"""Tests for chainrule.io: model files in the safetensors layout, refused when tampered with."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule
from chainrule import nn
from chainrule.io import (
    MAX_HEADER_BYTES,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    MetadataError,
    ModelFileError,
    _content_digest,
    load,
    read_metadata,
    save,
)

# --- helpers ----------------------------------------------------------------------------


def _read_raw(path: Path) -> tuple[dict[str, Any], bytes]:
    """The header (as JSON) and the data section of a model file, parsed by hand."""
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def _write_raw(path: Path, header: dict[str, Any], data: bytes) -> Path:
    """Write a file with the given header and data section (a consistent length field)."""
    header_bytes = json.dumps(header).encode("utf-8")
    path.write_bytes(struct.pack("<Q", len(header_bytes)) + header_bytes + data)
    return path


def _saved_mlp(tmp_path: Path, **options: Any) -> tuple[nn.MLP, Path]:
    model = nn.MLP([3, 4, 2], activation="tanh", output_activation="sigmoid", seed=0, **options)
    return model, save(model, tmp_path / "model.safetensors")


def _assert_same_state(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert a[key].shape == b[key].shape, key
        assert a[key].tobytes() == b[key].tobytes(), key  # bit for bit, NaN-safe


def _pickle_payload(marker: Path) -> bytes:
    """A pickle whose unpickling creates ``marker`` (what a malicious weights file does)."""

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (marker,))

    return pickle.dumps(Payload())


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "options",
    [
        {"sizes": [3, 2, 1], "output_activation": "sigmoid"},
        {"sizes": [4, 5, 3, 2], "activation": ["relu", "tanh"], "output_activation": "softmax"},
        {"sizes": [2, 3, 1], "activation": "identity", "bias": False},
    ],
)
def test_save_load_round_trips_mlp_bit_exactly(
    tmp_path: Path, dtype: str, options: dict[str, Any]
) -> None:
    """An MLP comes back with the same architecture and bit-identical weights and outputs."""
    model = nn.MLP(dtype=dtype, seed=1, **options)
    path = save(model, tmp_path / "mlp.safetensors")
    loaded = load(path)
    assert type(loaded) is nn.MLP
    assert loaded.config() == model.config()
    _assert_same_state(loaded.state_dict(), model.state_dict())
    x = np.random.default_rng(0).normal(size=(5, options["sizes"][0])).astype(dtype)
    assert model(x).data.tobytes() == loaded(x).data.tobytes()


def test_save_load_round_trips_neuron_mlp_bit_exactly(tmp_path: Path) -> None:
    """The neuron-level network round-trips: same config, the same Value weights bit for bit."""
    model = nn.NeuronMLP([3, 2, 1], activation="sigmoid", output_activation="sigmoid", seed=3)
    # Weights that are not round in binary, to catch any loss of precision.
    model.set_weights({"w1[1,1]": 1 / 3, "w1[2,4]": -np.pi, "w2[1,3]": 1e-300})
    loaded = load(save(model, tmp_path / "neurons.safetensors"))
    assert type(loaded) is nn.NeuronMLP
    assert loaded.config() == model.config()
    _assert_same_state(loaded.state_dict(), model.state_dict())
    assert loaded.get_weights() == model.get_weights()
    assert [v.data for v in loaded([0.5, -1.0, 2.0])] == [v.data for v in model([0.5, -1.0, 2.0])]


def test_save_load_moves_weights_between_neuron_and_tensor_networks(tmp_path: Path) -> None:
    """A NeuronMLP file's weights load into the tensor-level MLP of the same sizes unchanged."""
    neuron = nn.NeuronMLP([2, 2, 1], output_activation="sigmoid", seed=5)
    loaded = load(save(neuron, tmp_path / "n.safetensors"))
    mlp = nn.MLP([2, 2, 1], output_activation="sigmoid", seed=9)
    mlp.load_state_dict(loaded.state_dict())
    _assert_same_state(mlp.state_dict(), neuron.state_dict())


def test_save_load_round_trips_sequential(tmp_path: Path) -> None:
    """A Sequential of layers and activation modules is rebuilt from its nested config."""
    model = nn.Sequential(nn.Linear(3, 4, seed=0), nn.Tanh(), nn.Linear(4, 1, seed=1))
    loaded = load(save(model, tmp_path / "seq.safetensors"))
    assert loaded.config() == model.config()
    _assert_same_state(loaded.state_dict(), model.state_dict())


def test_save_writes_the_safetensors_layout(tmp_path: Path) -> None:
    """The header length, JSON entries, 8-byte alignment, contiguous offsets and metadata
    are exactly the safetensors layout, and the data bytes are the little-endian weights."""
    model, path = _saved_mlp(tmp_path, dtype="float32")
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    assert (8 + length) % 8 == 0
    header, data = _read_raw(path)
    metadata = header.pop("__metadata__")
    assert metadata["format"] == "chainrule"
    assert metadata["chainrule_version"] == chainrule.__version__
    assert json.loads(metadata["config"]) == model.config()
    state = model.state_dict()
    assert list(header) == list(state)
    position = 0
    for name, array in state.items():
        entry = header[name]
        assert entry["dtype"] == "F32"
        assert entry["shape"] == list(array.shape)
        begin, end = entry["data_offsets"]
        assert begin == position
        assert data[begin:end] == array.astype("<f4").tobytes()
        position = end
    assert position == len(data)


def test_save_file_is_read_by_the_safetensors_package(tmp_path: Path) -> None:
    """When the safetensors package is installed, it reads our files with the same tensors."""
    if importlib.util.find_spec("safetensors") is None:
        pytest.skip("the safetensors package is not installed")
    from safetensors import safe_open
    from safetensors.numpy import load_file

    model, path = _saved_mlp(tmp_path, dtype="float64")
    _assert_same_state(dict(load_file(str(path))), model.state_dict())
    with safe_open(str(path), "np") as handle:
        assert json.loads(handle.metadata()["config"]) == model.config()


def test_load_reads_a_file_written_by_the_safetensors_package(tmp_path: Path) -> None:
    """A file the safetensors package wrote, with our metadata, loads as a model."""
    if importlib.util.find_spec("safetensors") is None:
        pytest.skip("the safetensors package is not installed")
    from safetensors.numpy import save_file

    model = nn.MLP([2, 3, 1], seed=2)
    metadata = {
        "format": "chainrule",
        "chainrule_version": chainrule.__version__,
        "config": json.dumps(model.config()),
    }
    path = tmp_path / "other.safetensors"
    save_file(model.state_dict(), str(path), metadata=metadata)
    _assert_same_state(load(path).state_dict(), model.state_dict())


def test_save_replaces_an_existing_file(tmp_path: Path) -> None:
    """Saving over a file replaces it whole with the new model."""
    path = tmp_path / "model.safetensors"
    save(nn.MLP([2, 2, 1], seed=0), path)
    second = nn.MLP([3, 1], seed=1)
    save(second, path)
    _assert_same_state(load(path).state_dict(), second.state_dict())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


# --- atomic writes ----------------------------------------------------------------------


@pytest.mark.parametrize("failure", [OSError("No space left on device"), KeyboardInterrupt()])
def test_save_interrupted_mid_write_leaves_target_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    """A failure after part of the file was written leaves the old file and no partial file."""
    path = tmp_path / "model.safetensors"
    old = nn.MLP([2, 2, 1], seed=0)
    save(old, path)
    before = path.read_bytes()

    import chainrule.io as chainrule_io

    real_tensor_bytes = chainrule_io._tensor_bytes
    calls = []

    def fail_on_second_tensor(array: np.ndarray) -> memoryview:
        calls.append(array)
        if len(calls) == 2:  # the header and the first tensor are already written
            raise failure
        return real_tensor_bytes(array)

    monkeypatch.setattr(chainrule_io, "_tensor_bytes", fail_on_second_tensor)
    with pytest.raises(type(failure)):
        save(nn.MLP([2, 2, 1], seed=1), path)
    assert len(calls) == 2
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_save_failing_before_rename_leaves_no_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the flush to disk fails, there is no file at the target and no temporary left."""

    def broken_fsync(descriptor: int) -> None:
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="I/O error"):
        save(nn.MLP([2, 1], seed=0), tmp_path / "model.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_save_into_missing_folder_raises_file_not_found(tmp_path: Path) -> None:
    """Saving into a folder that does not exist says so and writes nothing."""
    with pytest.raises(FileNotFoundError, match="no folder"):
        save(nn.MLP([2, 1], seed=0), tmp_path / "missing" / "model.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_model_whose_config_cannot_be_written(tmp_path: Path) -> None:
    """A model built with an unnamed Python callable cannot be saved, and nothing is written."""
    model = nn.MLP([2, 2, 1], activation=lambda x: x * 2.0, seed=0)
    with pytest.raises((TypeError, ValueError), match="callable"):
        save(model, tmp_path / "model.safetensors")
    assert list(tmp_path.iterdir()) == []


# --- refusing bad files -----------------------------------------------------------------


def test_load_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    """A path with no file behind it raises FileNotFoundError, not a format error."""
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nothing.safetensors")


@pytest.mark.parametrize("keep", [0, 5, 8, 20, -9, -1])
def test_load_refuses_truncated_file(tmp_path: Path, keep: int) -> None:
    """A file cut short anywhere (in the length field, the header or the data) is refused."""
    _, path = _saved_mlp(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw[:keep])
    with pytest.raises(ModelFileError, match=r"truncated|too short|JSON") as caught:
        load(path)
    assert str(path) in str(caught.value)


def test_load_refuses_corrupted_header(tmp_path: Path) -> None:
    """Bytes flipped inside the header make it invalid JSON (or not UTF-8): refused."""
    _, path = _saved_mlp(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[12] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match=r"UTF-8|JSON"):
        load(path)


def test_load_refuses_random_bytes(tmp_path: Path) -> None:
    """A file of random bytes is refused by its length field without reading further."""
    path = tmp_path / "noise.safetensors"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelFileError, match="header length"):
        load(path)


def test_load_refuses_huge_header_length(tmp_path: Path) -> None:
    """A length field larger than the file or the header limit is refused before reading."""
    _, path = _saved_mlp(tmp_path)
    raw = path.read_bytes()
    for length in (len(raw), MAX_HEADER_BYTES + 1, 2**64 - 1):
        path.write_bytes(struct.pack("<Q", length) + raw[8:])
        with pytest.raises(ModelFileError, match="header length field says"):
            load(path)


def _tamper(path: Path, change: Any) -> None:
    header, data = _read_raw(path)
    data = change(header, data)
    _write_raw(path, header, data)


def _change_shape(header: dict[str, Any], data: bytes) -> bytes:
    # (4, 3) -> (3, 4): the same byte count, so only the architecture check can catch it.
    header["layers.0.weight"]["shape"] = [3, 4]
    return data


def _overlap_offsets(header: dict[str, Any], data: bytes) -> bytes:
    first = header["layers.0.weight"]["data_offsets"]
    bias = header["layers.0.bias"]
    size = bias["data_offsets"][1] - bias["data_offsets"][0]
    bias["data_offsets"] = [first[0], first[0] + size]
    return data


def _extra_tensor(header: dict[str, Any], data: bytes) -> bytes:
    header["layers.9.weight"] = {
        "dtype": "F64",
        "shape": [1],
        "data_offsets": [len(data), len(data) + 8],
    }
    return data + np.float64(1.0).tobytes()


def _unknown_type(header: dict[str, Any], data: bytes) -> bytes:
    config = json.loads(header["__metadata__"]["config"])
    config["type"] = "os.system"
    header["__metadata__"]["config"] = json.dumps(config)
    return data


def _unknown_dtype(header: dict[str, Any], data: bytes) -> bytes:
    header["layers.0.bias"]["dtype"] = "I64"
    return data


def _object_dtype(header: dict[str, Any], data: bytes) -> bytes:
    header["layers.0.bias"]["dtype"] = "O"
    return data


def _wrong_float_width(header: dict[str, Any], data: bytes) -> bytes:
    # Re-encode every tensor as F32 (consistent offsets) for a float64 architecture.
    position, chunks = 0, []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        chunk = np.frombuffer(data[begin:end], "<f8").astype("<f4").tobytes()
        entry.update(dtype="F32", data_offsets=[position, position + len(chunk)])
        position += len(chunk)
        chunks.append(chunk)
    return b"".join(chunks)


def _missing_metadata(header: dict[str, Any], data: bytes) -> bytes:
    del header["__metadata__"]
    return data


def _foreign_format(header: dict[str, Any], data: bytes) -> bytes:
    header["__metadata__"]["format"] = "pt"
    return data


def _extra_metadata_key(header: dict[str, Any], data: bytes) -> bytes:
    header["__metadata__"]["loader"] = "pickle"
    return data


def _config_not_object(header: dict[str, Any], data: bytes) -> bytes:
    header["__metadata__"]["config"] = json.dumps(["MLP", [3, 4, 2]])
    return data


def _inflated_sizes(header: dict[str, Any], data: bytes) -> bytes:
    # Would be a 10^10-weight network if built: must be refused before building.
    config = json.loads(header["__metadata__"]["config"])
    config["sizes"] = [100_000, 100_000, 2]
    header["__metadata__"]["config"] = json.dumps(config)
    return data


def _trailing_bytes(header: dict[str, Any], data: bytes) -> bytes:
    return data + b"\x00" * 8


def _wrong_byte_count(header: dict[str, Any], data: bytes) -> bytes:
    header["layers.1.bias"]["shape"] = [3]
    return data


def _extra_entry_key(header: dict[str, Any], data: bytes) -> bytes:
    header["layers.0.bias"]["loader"] = "eval"
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_change_shape, r"shape \(3, 4\).*needs \(4, 3\)"),
        (_overlap_offsets, "overlaps"),
        (_extra_tensor, r"unexpected \['layers.9.weight'\]"),
        (_unknown_type, "'os.system'.*known types"),
        (_unknown_dtype, "dtype 'I64'"),
        (_object_dtype, "dtype 'O'"),
        (_wrong_float_width, "is float32, but its MLP architecture is float64"),
        (_missing_metadata, "no '__metadata__'"),
        (_foreign_format, "format is 'pt'"),
        (_extra_metadata_key, r"unknown keys \['loader'\]"),
        (_config_not_object, "not a JSON object with a 'type'"),
        (_inflated_sizes, "describes 10000300002 weights, but the file holds 26"),
        (_trailing_bytes, "unclaimed bytes at the end"),
        (_wrong_byte_count, "needs 24 bytes, but its data_offsets span 16"),
        (_extra_entry_key, "has keys"),
    ],
)
def test_load_refuses_tampered_file(tmp_path: Path, change: Any, message: str) -> None:
    """A file whose header was edited is refused with a ModelFileError saying what is wrong."""
    _, path = _saved_mlp(tmp_path)
    _tamper(path, change)
    with pytest.raises(ModelFileError, match=message) as caught:
        load(path)
    assert isinstance(caught.value, chainrule.ChainruleError)
    assert isinstance(caught.value, ValueError)
    assert caught.value.path == path
    assert str(path) in str(caught.value)


def test_load_refuses_gap_between_tensors(tmp_path: Path) -> None:
    """Offsets that skip bytes between two tensors are refused."""
    _, path = _saved_mlp(tmp_path)
    header, data = _read_raw(path)
    last = max(
        (name for name in header if name != "__metadata__"),
        key=lambda name: header[name]["data_offsets"][0],
    )
    begin, end = header[last]["data_offsets"]
    header[last]["data_offsets"] = [begin + 8, end + 8]
    _write_raw(path, header, data[:begin] + b"\x00" * 8 + data[begin:])
    with pytest.raises(ModelFileError, match="unclaimed bytes"):
        load(path)


def test_load_refuses_duplicate_header_keys(tmp_path: Path) -> None:
    """A header naming a tensor twice (where JSON parsers would keep one) is refused."""
    _, path = _saved_mlp(tmp_path)
    header, data = _read_raw(path)
    text = json.dumps(header)
    entry = json.dumps(header["layers.1.bias"])
    text = text[:-1] + f', "layers.1.bias": {entry}}}'
    encoded = text.encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)
    with pytest.raises(ModelFileError, match="appears twice"):
        load(path)


def test_load_refuses_non_finite_json_constants(tmp_path: Path) -> None:
    """NaN or Infinity written into the header (not JSON) is refused."""
    _, path = _saved_mlp(tmp_path)
    header, data = _read_raw(path)
    text = json.dumps(header).replace('"shape": [2]', '"shape": [NaN]', 1)
    encoded = text.encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)
    with pytest.raises(ModelFileError, match="JSON"):
        load(path)


def test_load_never_builds_model_for_refused_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Header problems are found before chainrule.nn.from_config is ever called."""
    _, path = _saved_mlp(tmp_path)
    _tamper(path, _overlap_offsets)

    def must_not_build(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("from_config was called for an invalid file")

    monkeypatch.setattr(nn, "from_config", must_not_build)
    with pytest.raises(ModelFileError, match="overlaps"):
        load(path)


def test_pickle_payload_used_in_these_tests_is_armed(tmp_path: Path) -> None:
    """Control: the payload really creates its marker when unpickled (by the test itself)."""
    marker = tmp_path / "control-marker"
    pickle.loads(_pickle_payload(marker))
    assert marker.exists()


def test_load_refuses_pickle_payloads_without_running_them(tmp_path: Path) -> None:
    """Files carrying a pickle (whole file, after valid data, in the metadata, in a tensor
    entry) are refused with ModelFileError, and the payload's marker never appears."""
    marker = tmp_path / "pwned"
    payload = _pickle_payload(marker)
    _, valid = _saved_mlp(tmp_path)
    header, data = _read_raw(valid)

    raw_pickle = tmp_path / "raw.safetensors"
    raw_pickle.write_bytes(payload)
    # PyTorch's .pt format: a zip archive holding the pickle.
    zipped = tmp_path / "zipped.safetensors"
    zipped.write_bytes(b"PK\x03\x04" + payload)
    appended = tmp_path / "appended.safetensors"
    appended.write_bytes(valid.read_bytes() + payload)
    in_metadata = _write_raw(
        tmp_path / "metadata.safetensors",
        {**header, "__metadata__": {**header["__metadata__"], "config": payload.hex()}},
        data,
    )
    as_tensor = _write_raw(
        tmp_path / "tensor.safetensors",
        {
            **header,
            "payload": {
                "dtype": "O",
                "shape": [len(payload)],
                "data_offsets": [len(data), len(data) + len(payload)],
            },
        },
        data + payload,
    )
    for path in (raw_pickle, zipped, appended, in_metadata, as_tensor):
        with pytest.raises(ModelFileError):
            load(path)
    assert not marker.exists()


# --- user metadata ----------------------------------------------------------------------

_METADATA = {
    "features": [{"column": "age", "mean": 29.69911764705882, "scale": 14.526497332334042}],
    "classes": ["no", "yes", "peut-être ✓"],
    "counts": {"rows": 891, "big": 2**70, "negative": -3},
    "flags": [True, False, None],
    "tiny": 5e-324,
    "empty": {"list": [], "dict": {}, "text": ""},
}


def test_save_load_round_trips_metadata(tmp_path: Path) -> None:
    """Metadata given to save comes back equal from load(with_metadata=True) and read_metadata,
    floats bit for bit, and the model beside it is unchanged."""
    model = nn.MLP([3, 4, 2], seed=0)
    path = save(model, tmp_path / "model.safetensors", metadata=_METADATA)
    loaded, metadata = load(path, with_metadata=True)
    assert metadata == _METADATA
    assert metadata["features"][0]["mean"].hex() == (29.69911764705882).hex()
    assert read_metadata(path) == _METADATA
    _assert_same_state(loaded.state_dict(), model.state_dict())
    plain = load(path)
    assert isinstance(plain, nn.MLP)  # without with_metadata: the model alone, as before
    header, _ = _read_raw(path)
    assert json.loads(header["__metadata__"]["user"]) == _METADATA


def test_save_metadata_accepts_any_mapping_and_tuples(tmp_path: Path) -> None:
    """A read-only mapping and tuples are stored; tuples come back as lists (JSON arrays)."""
    from types import MappingProxyType

    path = save(
        nn.MLP([2, 1], seed=0),
        tmp_path / "m.safetensors",
        metadata=MappingProxyType({"shape": (2, 1), "inner": MappingProxyType({"a": 1})}),
    )
    assert read_metadata(path) == {"shape": [2, 1], "inner": {"a": 1}}


def test_save_without_metadata_writes_the_original_format(tmp_path: Path) -> None:
    """With no metadata the header holds exactly the three original metadata fields and the
    digest, and load(with_metadata=True) and read_metadata give an empty dict."""
    _, path = _saved_mlp(tmp_path)
    header, _ = _read_raw(path)
    assert sorted(header["__metadata__"]) == ["chainrule_version", "config", "digest", "format"]
    model, metadata = load(path, with_metadata=True)
    assert isinstance(model, nn.MLP)
    assert metadata == {}
    assert read_metadata(path) == {}


def test_save_empty_metadata_round_trips(tmp_path: Path) -> None:
    """An empty mapping is stored as an empty JSON object and read back as {}."""
    path = save(nn.MLP([2, 1], seed=0), tmp_path / "m.safetensors", metadata={})
    header, _ = _read_raw(path)
    assert header["__metadata__"]["user"] == "{}"
    assert read_metadata(path) == {}


def test_load_reads_a_hand_written_file_of_the_original_format(tmp_path: Path) -> None:
    """A file laid out as before user metadata existed (written here byte by byte) still
    loads, with empty metadata."""
    model = nn.MLP([2, 2, 1], seed=4)
    state = model.state_dict()
    header: dict[str, Any] = {}
    data = b""
    for name, array in state.items():
        chunk = np.asarray(array, dtype="<f8").tobytes()
        header[name] = {
            "dtype": "F64",
            "shape": list(np.shape(array)),
            "data_offsets": [len(data), len(data) + len(chunk)],
        }
        data += chunk
    header["__metadata__"] = {
        "format": "chainrule",
        "chainrule_version": "0.1.0",
        "config": json.dumps(model.config()),
    }
    path = _write_raw(tmp_path / "old.safetensors", header, data)
    loaded, metadata = load(path, with_metadata=True)
    assert metadata == {}
    _assert_same_state(loaded.state_dict(), model.state_dict())


def _cycle() -> dict[str, Any]:
    looped: dict[str, Any] = {}
    looped["self"] = looped
    return looped


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({1: "one"}, "metadata has the key 1 of type int; JSON keys must be str"),
        ({"a": {"b": {(1, 2): 3}}}, r"metadata\['a'\]\['b'\] has the key \(1, 2\) of type tuple"),
        ({"a": [1, float("nan")]}, r"metadata\['a'\]\[1\] is nan; JSON has no NaN"),
        ({"a": float("-inf")}, "is -inf; JSON has no NaN or infinity"),
        ({"a": {1, 2}}, r"metadata\['a'\] is a set"),
        ({"a": b"bytes"}, r"metadata\['a'\] is a bytes"),
        ({"a": np.int64(3)}, r"metadata\['a'\] is a int64 .*\.tolist\(\)"),
        ({"a": object()}, r"metadata\['a'\] is a object"),
        ({"a": Path("x")}, r"metadata\['a'\] is a PosixPath|metadata\['a'\] is a WindowsPath"),
        ([("a", 1)], "metadata must be a mapping with str keys"),
        ("text", "metadata must be a mapping with str keys"),
        pytest.param(_cycle(), r"contains itself", id="cycle"),
        pytest.param(
            _nested(MAX_METADATA_DEPTH + 1), f"nested more than {MAX_METADATA_DEPTH}", id="deep"
        ),
        pytest.param(
            {"blob": "x" * MAX_METADATA_BYTES},
            f"more than the {MAX_METADATA_BYTES} bytes allowed",
            id="too-large",
        ),
    ],
)
def test_save_refuses_metadata_that_is_not_plain_json(
    tmp_path: Path, metadata: Any, message: str
) -> None:
    """Metadata JSON cannot hold exactly (or too large or deep) raises MetadataError naming
    the entry, and leaves an existing file untouched and no other file behind."""
    path = tmp_path / "model.safetensors"
    save(nn.MLP([2, 1], seed=0), path)
    before = path.read_bytes()
    with pytest.raises(MetadataError, match=message) as caught:
        save(nn.MLP([2, 1], seed=1), path, metadata=metadata)
    assert isinstance(caught.value, chainrule.ChainruleError)
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ValueError)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_save_accepts_metadata_at_the_depth_limit(tmp_path: Path) -> None:
    """Nesting exactly MAX_METADATA_DEPTH deep is allowed and round-trips."""
    deep = _nested(MAX_METADATA_DEPTH)
    path = save(nn.MLP([2, 1], seed=0), tmp_path / "deep.safetensors", metadata=deep)
    assert read_metadata(path) == deep


def _with_user_text(path: Path, text: Any) -> None:
    """Replace the file's stored user metadata by ``text`` (as written by a tamperer who
    also recomputed the digest, which is no secret)."""
    header, data = _read_raw(path)
    header["__metadata__"]["user"] = text
    metadata = header["__metadata__"]
    fields = {k: v for k, v in metadata.items() if k != "digest"}
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    metadata["digest"] = "sha256:" + _content_digest(fields, tensors, [data])
    _write_raw(path, header, data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "the user metadata is not valid JSON"),
        ('{"a": 1', "the user metadata is not valid JSON"),
        ("[1, 2]", "the user metadata is a JSON array, not a JSON object"),
        ('"just text"', "the user metadata is a JSON string, not a JSON object"),
        ("3.5", "the user metadata is a JSON number, not a JSON object"),
        ("null", "the user metadata is JSON null, not a JSON object"),
        ({"a": 1}, r"'__metadata__'\['user'\] is not a string holding a JSON object"),
        (["a"], r"'__metadata__'\['user'\] is not a string"),
        ('{"a": 1, "a": 2}', "the key 'a' appears twice"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": [1e999]}', r"the user metadata\['a'\]\[0\] is inf; JSON has no NaN"),
        pytest.param(
            '{"a": ' * 70 + "1" + "}" * 70, f"nested more than {MAX_METADATA_DEPTH}", id="deep"
        ),
        pytest.param("[" * 100_000 + "]" * 100_000, "not valid JSON", id="too-deep-for-json"),
        pytest.param(
            '{"a": "' + "x" * MAX_METADATA_BYTES + '"}',
            f"more than the {MAX_METADATA_BYTES} allowed",
            id="too-large",
        ),
        # MAX_METADATA_BYTES characters, one more byte in UTF-8: the limit counts bytes.
        pytest.param(
            '{"a": "é' + "x" * (MAX_METADATA_BYTES - 10) + '"}',
            f"{MAX_METADATA_BYTES + 1} bytes",
            id="too-large-in-utf8",
        ),
    ],
)
def test_load_refuses_malformed_user_metadata(tmp_path: Path, text: Any, message: str) -> None:
    """User metadata in a file that is not a JSON object string within the limits is refused
    with ModelFileError by load, load(with_metadata=True) and read_metadata alike."""
    _, path = _saved_mlp(tmp_path)
    _with_user_text(path, text)
    for read in (load, lambda p: load(p, with_metadata=True), read_metadata):
        with pytest.raises(ModelFileError, match=message) as caught:
            read(path)
        assert caught.value.path == path


def test_load_parses_user_metadata_as_data_only(tmp_path: Path) -> None:
    """A pickle or Python code in the user metadata is refused or returned as plain text,
    never run: the payload's marker never appears."""
    marker = tmp_path / "pwned"
    _, path = _saved_mlp(tmp_path)
    _with_user_text(path, _pickle_payload(marker).decode("latin-1"))
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load(path)
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    _with_user_text(path, json.dumps({"code": code}))
    assert read_metadata(path) == {"code": code}
    assert load(path, with_metadata=True)[1] == {"code": code}
    _with_user_text(path, code)
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load(path)
    assert not marker.exists()


def test_read_metadata_does_not_build_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """read_metadata returns the metadata without calling chainrule.nn.from_config."""
    path = save(nn.MLP([2, 1], seed=0), tmp_path / "m.safetensors", metadata={"k": "v"})

    def must_not_build(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("from_config was called by read_metadata")

    monkeypatch.setattr(nn, "from_config", must_not_build)
    assert read_metadata(path) == {"k": "v"}


@pytest.mark.parametrize("change", [_overlap_offsets, _foreign_format, _extra_metadata_key])
def test_read_metadata_validates_the_header(tmp_path: Path, change: Any) -> None:
    """A tampered header is refused by read_metadata, not only by load."""
    path = save(nn.MLP([3, 4, 2], seed=0), tmp_path / "m.safetensors", metadata={"k": 1})
    _tamper(path, change)
    with pytest.raises(ModelFileError):
        read_metadata(path)


def test_read_metadata_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    """read_metadata on a path with no file raises FileNotFoundError."""
    with pytest.raises(FileNotFoundError):
        read_metadata(tmp_path / "nothing.safetensors")


def test_metadata_is_read_by_the_safetensors_package(tmp_path: Path) -> None:
    """The safetensors package reads a file with user metadata: a JSON string under 'user'."""
    if importlib.util.find_spec("safetensors") is None:
        pytest.skip("the safetensors package is not installed")
    from safetensors import safe_open

    model = nn.MLP([2, 3, 1], seed=0)
    path = save(model, tmp_path / "m.safetensors", metadata=_METADATA)
    with safe_open(str(path), "np") as handle:
        assert json.loads(handle.metadata()["user"]) == _METADATA
        assert handle.get_tensor("layers.0.weight").tobytes() == (
            model.state_dict()["layers.0.weight"].tobytes()
        )
