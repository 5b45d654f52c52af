"""Model-file integrity and hostile input (issue 13): digests, signatures, finite weights,
bounded work and messages, special files, and temporary files left by killed writers."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule
from chainrule import _files, nn
from chainrule.errors import NotARegularFileError
from chainrule.io import (
    MAX_CONFIG_DEPTH,
    MAX_MESSAGE_CHARS,
    ModelFileError,
    NonFiniteWeightsError,
    _content_digest,
    load,
    read_metadata,
    save,
)
from test_io import _read_raw  # the header (as JSON) and data section of a model file


def _write_raw(path: Path, header: dict[str, Any], data: bytes, *, restamp: bool = True) -> Path:
    """Write a model file by hand; with ``restamp``, recompute its digest as a tamperer
    who knows the format would (the digest is not a secret)."""
    if restamp and "digest" in header.get("__metadata__", {}):
        metadata = header["__metadata__"]
        fields = {k: v for k, v in metadata.items() if k not in ("digest", "signature")}
        tensors = {k: v for k, v in header.items() if k != "__metadata__"}
        metadata["digest"] = "sha256:" + _content_digest(fields, tensors, [data])
    encoded = json.dumps(header).encode("utf-8")
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)
    return path


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    left, right = a.state_dict(), b.state_dict()
    return list(left) == list(right) and all(
        np.asarray(left[k]).tobytes() == np.asarray(right[k]).tobytes() for k in left
    )


# --- item 3: checksums ------------------------------------------------------------------


def test_save_writes_a_sha256_digest_in_the_metadata(tmp_path: Path) -> None:
    """Every saved file carries 'sha256:' and 64 hex digits under __metadata__['digest']."""
    path = save(nn.MLP([2, 3, 1], seed=0), tmp_path / "m.safetensors")
    digest = _read_raw(path)[0]["__metadata__"]["digest"]
    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64


def test_item3_load_refuses_a_flipped_weight_byte(tmp_path: Path) -> None:
    """Changing one byte of the tensor data (a new, finite weight) is refused as corruption."""
    path = save(nn.MLP([2, 3, 1], seed=0), tmp_path / "m.safetensors")
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x01  # a low mantissa bit of the last weight: still finite
    path.write_bytes(bytes(raw))
    with pytest.raises(
        ModelFileError, match=r"do not match the SHA-256 digest.*corrupted or was altered"
    ):
        load(path)


def test_item3_every_single_byte_mutation_is_refused_or_harmless(tmp_path: Path) -> None:
    """Each byte of a small model file, changed (by one of three bit patterns, in turn), is
    refused with ModelFileError or loads the very same architecture and weights: never
    different weights silently."""
    model = nn.MLP([2, 2, 1], seed=3, dtype="float32")
    path = save(model, tmp_path / "m.safetensors", metadata={"note": "x"})
    original = path.read_bytes()
    mutant = tmp_path / "mutant.safetensors"
    outcomes = {"refused": 0, "identical": 0}
    for offset in range(len(original)):
        flip = (0x01, 0x20, 0x80)[offset % 3]
        raw = bytearray(original)
        raw[offset] ^= flip
        mutant.write_bytes(bytes(raw))
        try:
            loaded = load(mutant)
        except ModelFileError:
            outcomes["refused"] += 1
            continue
        assert loaded.config() == model.config(), (offset, flip)
        assert _same_weights(loaded, model), (offset, flip)
        outcomes["identical"] += 1
    assert outcomes["refused"] > 0.9 * len(original)


def test_item3_save_refuses_non_finite_weights(tmp_path: Path) -> None:
    """A model with a NaN or infinite weight is not saved, and the message says where."""
    for bad in (np.nan, np.inf, -np.inf):
        model = nn.MLP([2, 2, 1], seed=0)
        model.layers[1].weight.data[0, 1] = bad
        with pytest.raises(NonFiniteWeightsError, match=r"'layers.1.weight'.*index \(0, 1\)"):
            save(model, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("restamp", [True, False], ids=["digest-recomputed", "no-digest"])
def test_item3_load_refuses_non_finite_weights(tmp_path: Path, restamp: bool) -> None:
    """A file whose weights hold NaN is refused, even when its digest was recomputed or
    it has none (as a file from the safetensors package)."""
    path = save(nn.MLP([2, 2, 1], seed=0), tmp_path / "m.safetensors")
    header, data = _read_raw(path)
    if not restamp:
        del header["__metadata__"]["digest"]
    data = np.full(len(data) // 8, np.nan).tobytes()
    _write_raw(path, header, data, restamp=restamp)
    with pytest.raises(ModelFileError, match="NaN or infinite weights"):
        load(path)


def test_load_accepts_a_file_without_digest(tmp_path: Path) -> None:
    """A file with no digest (as the safetensors package writes) loads, unchecked."""
    model = nn.MLP([2, 3, 1], seed=1)
    path = save(model, tmp_path / "m.safetensors")
    header, data = _read_raw(path)
    del header["__metadata__"]["digest"]
    _write_raw(path, header, data)
    assert _same_weights(load(path), model)


def test_load_refuses_a_malformed_digest(tmp_path: Path) -> None:
    """A digest field that is not 'sha256:' and 64 lowercase hex digits is refused."""
    path = save(nn.MLP([2, 1], seed=0), tmp_path / "m.safetensors")
    header, data = _read_raw(path)
    header["__metadata__"]["digest"] = "md5:abc"
    _write_raw(path, header, data, restamp=False)
    with pytest.raises(ModelFileError, match=r"'digest'\] is 'md5:abc'"):
        load(path)


def test_digest_covers_the_architecture_and_user_metadata(tmp_path: Path) -> None:
    """Editing the config or the user metadata without recomputing the digest is refused."""
    path = save(nn.MLP([2, 2, 1], seed=0), tmp_path / "m.safetensors", metadata={"a": 1})
    header, data = _read_raw(path)
    config = json.loads(header["__metadata__"]["config"])
    config["activation"] = "relu"
    header["__metadata__"]["config"] = json.dumps(config)
    _write_raw(path, header, data, restamp=False)
    with pytest.raises(ModelFileError, match="digest"):
        load(path)
    path = save(nn.MLP([2, 2, 1], seed=0), tmp_path / "m.safetensors", metadata={"a": 1})
    header, data = _read_raw(path)
    header["__metadata__"]["user"] = '{"a":2}'
    _write_raw(path, header, data, restamp=False)
    with pytest.raises(ModelFileError, match="digest"):
        load(path)


# --- signing keys ---------------------------------------------------------------------------


def test_signed_file_loads_with_its_key(tmp_path: Path) -> None:
    """A file saved with key= loads with the same key (bytes or str) and without a key."""
    model = nn.MLP([2, 3, 1], seed=0)
    path = save(model, tmp_path / "m.safetensors", key="s3cret")
    assert _same_weights(load(path, key="s3cret"), model)
    assert _same_weights(load(path, key=b"s3cret"), model)
    assert _same_weights(load(path), model)


def test_signed_file_with_recomputed_digest_is_refused_with_the_key(tmp_path: Path) -> None:
    """A tamperer who edits the weights and recomputes the digest passes the digest check,
    but not the signature check."""
    path = save(nn.MLP([2, 3, 1], seed=0), tmp_path / "m.safetensors", key=b"k")
    header, data = _read_raw(path)
    _write_raw(path, header, np.full(len(data) // 8, 0.5).tobytes())
    load(path)  # the digest alone cannot tell
    with pytest.raises(ModelFileError, match="signature does not match the key"):
        load(path, key=b"k")


def test_load_with_key_refuses_wrong_key_and_unsigned_files(tmp_path: Path) -> None:
    """The wrong key, an unsigned file and a removed signature are all refused."""
    path = save(nn.MLP([2, 1], seed=0), tmp_path / "m.safetensors", key="right")
    with pytest.raises(ModelFileError, match="signature does not match"):
        load(path, key="wrong")
    header, data = _read_raw(path)
    del header["__metadata__"]["signature"]
    _write_raw(path, header, data)
    with pytest.raises(ModelFileError, match="not signed"):
        load(path, key="right")
    unsigned = save(nn.MLP([2, 1], seed=0), tmp_path / "u.safetensors")
    with pytest.raises(ModelFileError, match="not signed"):
        load(unsigned, key="right")


def test_save_refuses_an_empty_key(tmp_path: Path) -> None:
    """An empty key protects nothing and is refused before anything is written."""
    with pytest.raises(TypeError, match="non-empty"):
        save(nn.MLP([2, 1], seed=0), tmp_path / "m.safetensors", key="")
    assert list(tmp_path.iterdir()) == []


# --- item 7: depth limit ----------------------------------------------------------------


def _nested_sequential_file(path: Path, depth: int) -> Path:
    """A hand-made file whose config nests ``depth`` Sequentials around one Linear."""
    model = nn.Linear(2, 1, seed=0)
    config: dict[str, Any] = model.config()
    prefix = ""
    for _ in range(depth):
        config = {"type": "Sequential", "modules": [config]}
        prefix += "0."
    header: dict[str, Any] = {}
    data = b""
    for name, value in model.state_dict().items():
        chunk = np.asarray(value, dtype="<f8").tobytes()
        header[prefix + name] = {
            "dtype": "F64",
            "shape": list(np.shape(value)),
            "data_offsets": [len(data), len(data) + len(chunk)],
        }
        data += chunk
    header["__metadata__"] = {
        "format": "chainrule",
        "chainrule_version": chainrule.__version__,
        "config": json.dumps(config),
    }
    return _write_raw(path, header, data)


def test_item7_config_nesting_sequential_330_deep_is_refused(tmp_path: Path) -> None:
    """A config nesting Sequential 330 deep is refused with ModelFileError naming the depth
    limit, not a RecursionError."""
    path = _nested_sequential_file(tmp_path / "deep.safetensors", 330)
    for read in (load, read_metadata):
        with pytest.raises(ModelFileError, match=f"nests more than {MAX_CONFIG_DEPTH} levels"):
            read(path)


def test_item7_config_within_the_depth_limit_loads_and_predicts(tmp_path: Path) -> None:
    """Nesting below the limit still loads, and predicts like the flat model."""
    path = _nested_sequential_file(tmp_path / "ok.safetensors", 20)
    model = load(path)
    x = np.array([[1.0, 2.0]])
    expected = nn.Linear(2, 1, seed=0)(x).data
    np.testing.assert_array_equal(model(x).data, expected)


def test_item7_save_refuses_a_model_nested_beyond_the_limit(tmp_path: Path) -> None:
    """save() does not write a file that load() would refuse."""
    model: nn.Module = nn.Linear(2, 1, seed=0)
    for _ in range(MAX_CONFIG_DEPTH):
        model = nn.Sequential(model)
    with pytest.raises(ValueError, match="nests more than"):
        save(model, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


# --- item 8: special files --------------------------------------------------------------


def _finishes_within(seconds: float, action: Any) -> BaseException | None:
    """Run ``action`` in a thread; the exception it raised, after asserting it ended in time."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            action()
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "it hung"
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_item8_fifo_as_model_path_is_refused_without_hanging(tmp_path: Path) -> None:
    """load and read_metadata refuse a FIFO at once instead of waiting for a writer."""
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    for read in (load, read_metadata):
        error = _finishes_within(10, lambda read=read: read(fifo))
        assert isinstance(error, NotARegularFileError)
        assert "FIFO" in str(error) and str(fifo) in str(error)
        assert isinstance(error, chainrule.ChainruleError)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_item8_device_as_model_path_is_refused(tmp_path: Path) -> None:
    """/dev/zero as a model is refused as a device, not read until memory runs out."""
    error = _finishes_within(10, lambda: load("/dev/zero"))
    assert isinstance(error, NotARegularFileError)
    assert "a device" in str(error)


def test_item8_folder_as_model_path_is_refused(tmp_path: Path) -> None:
    """A folder given as a model file is refused as a folder."""
    with pytest.raises(NotARegularFileError, match="a folder"):
        load(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_item8_save_refuses_to_replace_a_fifo(tmp_path: Path) -> None:
    """Saving onto a FIFO is refused and leaves it in place."""
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFileError, match="FIFO"):
        save(nn.MLP([2, 1], seed=0), fifo)
    assert fifo.exists() and not fifo.is_file()


# --- item 9: bounded messages -----------------------------------------------------------


def _huge_name_file(path: Path, size: int) -> Path:
    header: dict[str, Any] = {
        "x" * size: {"dtype": "F64", "shape": [3], "data_offsets": [0, 24]},
        "__metadata__": {
            "format": "chainrule",
            "chainrule_version": "0.1.0",
            "config": json.dumps({"type": "MLP", "sizes": [2, 1]}),
        },
    }
    return _write_raw(path, header, b"\0" * 24)


def _huge_unknown_keys_file(path: Path, size: int) -> Path:
    model = nn.MLP([2, 1], seed=0)
    saved = save(model, path)
    header, data = _read_raw(saved)
    for index in range(size // 1000):
        header["__metadata__"][f"k{index}" + "y" * 1000] = "v"
    return _write_raw(path, header, data)


def _huge_config_file(path: Path, size: int) -> Path:
    model = nn.MLP([2, 1], seed=0)
    saved = save(model, path)
    header, data = _read_raw(saved)
    config = {"type": "MLP", "sizes": [2, 1], "activation": "x" * size}
    header["__metadata__"]["config"] = json.dumps(config)
    return _write_raw(path, header, data)


def _huge_dtype_file(path: Path, size: int) -> Path:
    model = nn.MLP([2, 1], seed=0)
    saved = save(model, path)
    header, data = _read_raw(saved)
    header["layers.0.weight"]["dtype"] = "F" * size
    return _write_raw(path, header, data)


@pytest.mark.parametrize(
    "make", [_huge_name_file, _huge_unknown_keys_file, _huge_config_file, _huge_dtype_file]
)
def test_item9_messages_do_not_echo_large_inputs(tmp_path: Path, make: Any) -> None:
    """A crafted file with megabytes of names, keys, config or dtype text gets a message of
    at most about MAX_MESSAGE_CHARS characters."""
    path = make(tmp_path / "big.safetensors", 1_000_000)
    with pytest.raises(ModelFileError) as caught:
        load(path)
    assert len(str(caught.value)) <= MAX_MESSAGE_CHARS + len(str(path)) + 100


# --- item 10: temporary files of killed writers ---------------------------------------------


_SLOW_SAVE = textwrap.dedent(
    """
    import sys, time
    from chainrule._files import write_atomically

    def write(handle):
        handle.write(b"x" * 100_000)
        handle.flush()
        print("writing", flush=True)
        time.sleep(60)

    write_atomically(sys.argv[1], write)
    """
)


@pytest.mark.parametrize("kill_with", [signal.SIGKILL, signal.SIGTERM])
def test_item10_next_save_removes_temporary_file_of_killed_save(
    tmp_path: Path, kill_with: signal.Signals
) -> None:
    """A save killed mid-write leaves its temporary file; the next save into the folder
    removes it (and replaces nothing else)."""
    target = tmp_path / "model.safetensors"
    save(nn.MLP([2, 1], seed=0), target)
    before = target.read_bytes()
    writer = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SAVE, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    writer.send_signal(kill_with)
    writer.wait(timeout=30)
    writer.stdout.close()
    left = [p for p in tmp_path.iterdir() if p.name.endswith(_files.TEMPORARY_SUFFIX)]
    assert len(left) == 1 and left[0].stat().st_size == 100_000
    assert target.read_bytes() == before
    save(nn.MLP([2, 1], seed=1), tmp_path / "other.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "other.safetensors"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX locks")
def test_item10_save_leaves_the_temporary_file_of_a_live_writer(tmp_path: Path) -> None:
    """A temporary file whose writer is still writing (its lock held) is not removed."""
    target = tmp_path / "model.safetensors"
    writer = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SAVE, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        save(nn.MLP([2, 1], seed=1), tmp_path / "other.safetensors")
        left = [p for p in tmp_path.iterdir() if p.name.endswith(_files.TEMPORARY_SUFFIX)]
        assert len(left) == 1
    finally:
        writer.kill()
        writer.wait(timeout=30)
        if writer.stdout is not None:
            writer.stdout.close()


def test_remove_stale_temporaries_ignores_other_files(tmp_path: Path) -> None:
    """Only chainrule's own temporary names are touched, never other hidden files."""
    (tmp_path / ".notes.tmp").write_text("keep")
    (tmp_path / "data.chainrule-tmp").write_text("keep: not hidden")
    stale = tmp_path / f".m.{'0' * 32}{_files.TEMPORARY_SUFFIX}"
    stale.write_text("stale")
    assert _files.remove_stale_temporaries(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.tmp", "data.chainrule-tmp"]
