"""Saving and loading models: weights in the safetensors layout, architecture as JSON.

A chainrule model file is a safetensors file (the ``safetensors`` package reads it):

    bytes 0-7      N, the header length, a little-endian unsigned 64-bit integer
    next N bytes   the header: UTF-8 JSON, padded with spaces to a multiple of 8
    the rest       the tensors' raw little-endian bytes, one after another

The header maps every tensor name (the model's ``state_dict`` keys, such as
``"layers.0.weight"``) to ``{"dtype": "F32" | "F64", "shape": [...],
"data_offsets": [begin, end]}`` (byte offsets into the data section), plus
``"__metadata__"``: ``{"format": "chainrule", "chainrule_version": "...",
"config": "<model.config() as a JSON string>"}`` and, when :func:`save` was given
``metadata``, ``"user": "<that metadata as a JSON object string>"`` (every metadata
value is a string, as the safetensors layout requires). Files without ``"user"`` (all
files written before it existed) load with empty metadata.

Integrity: ``"digest"`` is ``"sha256:<hex>"``, the SHA-256 of the tensor entries, the
other ``__metadata__`` fields (architecture, version, user metadata) and the tensor
bytes (see :func:`_content_digest`); :func:`load` refuses a file whose contents do not
match it ("corrupted or altered"). A digest protects against accidents (a flipped bit,
a truncated copy, an edit), not against someone who rewrites the digest too: for that,
``save(..., key=...)`` adds ``"signature"``: ``"hmac-sha256:<hex>"``, an HMAC of the
digest under your secret key, and ``load(..., key=...)`` refuses files that are not
signed with that key. Files without a digest (written by the ``safetensors`` package,
or by chainrule before digests existed) still load, unchecked, unless a key is given.
Weights must be finite: NaN and infinities are refused at saving and at loading.

Nothing in a file is ever executed: the header is parsed as JSON, the tensors are
read as plain numbers, the user metadata is parsed as JSON data, and the architecture
is rebuilt by :func:`chainrule.nn.from_config` from the JSON config. No pickle, no eval.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import math
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, overload

import numpy as np

from ._files import describe_file_type, write_atomically
from .errors import ChainruleError, NotARegularFileError

if TYPE_CHECKING:
    from .nn import Module

__all__ = [
    "MetadataError",
    "ModelFileError",
    "NonFiniteWeightsError",
    "load",
    "read_metadata",
    "save",
]

FORMAT_NAME = "chainrule"

#: The header is at most this long (the safetensors package's own limit), so a
#: corrupted length field cannot make ``load`` allocate gigabytes.
MAX_HEADER_BYTES = 100_000_000
#: The user metadata, as UTF-8 JSON text, is at most this long: it travels in the
#: header, which every reader parses whole, so it is meant for small documents
#: (preprocessing, provenance), not for data.
MAX_METADATA_BYTES = 10_000_000
#: Dicts and lists in the user metadata nest at most this deep (which also stops a
#: structure that contains itself).
MAX_METADATA_DEPTH = 64
#: The architecture config nests at most this deep (dicts and lists: a Sequential
#: inside a Sequential counts 2), so a crafted file cannot build a network whose
#: forward pass overflows Python's stack.
MAX_CONFIG_DEPTH = 64
#: Error messages quote at most this much of what a file holds.
MAX_QUOTED_CHARS = 80
#: ... and are at most this long in all.
MAX_MESSAGE_CHARS = 1000

_LENGTH_FIELD_BYTES = 8
_METADATA_KEY = "__metadata__"
_METADATA_FIELDS = ("format", "chainrule_version", "config")
_USER_METADATA_FIELD = "user"
_DIGEST_FIELD = "digest"
_SIGNATURE_FIELD = "signature"
_DIGEST_PREFIX = "sha256:"
_SIGNATURE_PREFIX = "hmac-sha256:"
_TENSOR_FIELDS = frozenset({"dtype", "shape", "data_offsets"})
_DTYPE_OF_CODE: dict[str, np.dtype] = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
_CODE_OF_DTYPE: dict[np.dtype, str] = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64"}

PathLike = str | os.PathLike[str]
#: A signing key: bytes, or a str (used as its UTF-8 bytes).
Key = bytes | str


def _quoted(value: Any) -> str:
    """``repr(value)``, cut to MAX_QUOTED_CHARS: messages never echo a whole input."""
    text = repr(value)
    if len(text) <= MAX_QUOTED_CHARS:
        return text
    return f"{text[: MAX_QUOTED_CHARS - 3]}... ({len(text)} characters)"


def _quoted_list(values: list[Any], limit: int = 5) -> str:
    """The first ``limit`` of ``values`` quoted, and how many more there are."""
    shown = ", ".join(_quoted(value) for value in values[:limit])
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return f"[{shown}]{more}"


class ModelFileError(ChainruleError, ValueError):
    """A model file is truncated, corrupted, tampered with, or not a chainrule model.

    ``path`` is the file and ``problem`` says what is wrong with it.
    """

    def __init__(self, path: PathLike, problem: str) -> None:
        if len(problem) > MAX_MESSAGE_CHARS:  # a crafted file must not make a huge message
            problem = (
                f"{problem[:MAX_MESSAGE_CHARS]}... (message cut at {MAX_MESSAGE_CHARS} characters)"
            )
        super().__init__(f"cannot load model file {os.fspath(path)!r}: {problem}")
        self.path = Path(path)
        self.problem = problem


class NonFiniteWeightsError(ChainruleError, ValueError):
    """:func:`save` was given a model with NaN or infinite weights (training diverged)."""


class MetadataError(ChainruleError, TypeError, ValueError):
    """Metadata given to :func:`save` cannot be stored: not plain JSON data, or too large.

    A TypeError (a value or key of the wrong type) and a ValueError (NaN, too large,
    too deep) at once, so either ``except`` catches it.
    """


# --- saving ---------------------------------------------------------------------------


def save(
    model: Module,
    path: PathLike,
    metadata: Mapping[str, Any] | None = None,
    *,
    key: Key | None = None,
) -> Path:
    """Write ``model``'s architecture and weights (and your metadata) to ``path``, atomically.

    The file is first written to a temporary file in the same folder, flushed to
    disk and then renamed over ``path``: a crash or an error mid-way leaves any
    existing file at ``path`` as it was and no partial file behind.

    Args:
        model: a chainrule.nn module with ``config()`` and ``state_dict()`` (an
            ``MLP``, a ``NeuronMLP``, ...).
        path: where to write; the folder must exist. The suffix is up to you
            (``.safetensors`` tells other tools what the file is).
        metadata: anything to keep with the model (how inputs were scaled, class
            names, provenance), returned by ``load(path, with_metadata=True)`` and
            :func:`read_metadata`. It must be plain JSON data: a mapping with ``str``
            keys whose values are mappings with ``str`` keys, lists or tuples (read
            back as lists), ``str``, ``int``, finite ``float``, ``bool`` or ``None``,
            nested at most :data:`MAX_METADATA_DEPTH` deep and at most
            :data:`MAX_METADATA_BYTES` as JSON. ``None`` (the default) stores none.
        key: a secret (bytes, or a str used as UTF-8) to sign the file with, so that
            ``load(path, key=key)`` can tell it was not altered by anyone without
            the key. ``None`` (the default): unsigned; the file still carries a
            SHA-256 digest that ``load`` checks against accidental corruption.

    Returns:
        The path written, as a ``Path``.

    Raises:
        MetadataError: ``metadata`` is not plain JSON data or is too large; the
            message says which entry. Nothing is written.
        NonFiniteWeightsError: a weight is NaN or infinite (the training diverged);
            nothing is written.
    """
    target = Path(path)
    metadata_text = None if metadata is None else _encode_metadata(metadata)
    config = model.config()
    if not isinstance(config, dict) or not isinstance(config.get("type"), str):
        raise TypeError(
            f"cannot save {type(model).__name__}: its config() must return a dict with a "
            f"'type' string so load() can rebuild it, got {config!r}"
        )
    try:
        config_text = json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"cannot save {type(model).__name__}: its config() is not plain JSON ({error})"
        ) from None
    if _nesting_depth(config) > MAX_CONFIG_DEPTH:
        raise ValueError(
            f"cannot save {type(model).__name__}: its config nests more than "
            f"{MAX_CONFIG_DEPTH} levels deep, which load() refuses; flatten nested Sequentials"
        )
    key_bytes = None if key is None else _key_bytes(key)

    header: dict[str, Any] = {}
    arrays: list[np.ndarray] = []
    offset = 0
    for name, value in model.state_dict().items():
        array = _little_endian(name, value)
        if name == _METADATA_KEY or not name:
            raise ValueError(
                f"cannot save a tensor named {name!r}: the name is empty or reserved for "
                "the metadata"
            )
        header[name] = {
            "dtype": _CODE_OF_DTYPE[array.dtype.newbyteorder("=")],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        _refuse_non_finite_weights(type(model).__name__, name, array)
        arrays.append(array)
        offset += array.nbytes
    from . import __version__

    fields = {"format": FORMAT_NAME, "chainrule_version": __version__, "config": config_text}
    if metadata_text is not None:
        fields[_USER_METADATA_FIELD] = metadata_text
    digest = _content_digest(fields, header, (_tensor_bytes(array) for array in arrays))
    header[_METADATA_KEY] = {**fields, _DIGEST_FIELD: _DIGEST_PREFIX + digest}
    if key_bytes is not None:
        header[_METADATA_KEY][_SIGNATURE_FIELD] = _SIGNATURE_PREFIX + _sign(key_bytes, digest)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Pad with spaces (valid JSON whitespace) so the data section starts 8-byte aligned,
    # as the safetensors package writes it.
    header_bytes += b" " * (-len(header_bytes) % 8)
    length_field = len(header_bytes).to_bytes(_LENGTH_FIELD_BYTES, "little")

    def write_contents(handle: IO[bytes]) -> None:
        handle.write(length_field)
        handle.write(header_bytes)
        for array in arrays:
            handle.write(_tensor_bytes(array))

    write_atomically(target, write_contents)
    return target


def _encode_metadata(metadata: Mapping[str, Any]) -> str:
    """``metadata`` as compact JSON text, after checking it is plain JSON data of bounded size."""
    if not isinstance(metadata, Mapping):
        raise MetadataError(
            f"metadata must be a mapping with str keys (such as a dict), got "
            f"{type(metadata).__name__}"
        )
    try:
        plain = _plain_json_data(metadata, "metadata", 0)
    except _NotJsonData as error:
        raise MetadataError(f"cannot save the metadata: {error}") from None
    try:
        text = json.dumps(plain, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError as error:  # e.g. an int with more digits than Python converts
        raise MetadataError(f"cannot save the metadata: {error}") from None
    size = len(text.encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise MetadataError(
            f"cannot save the metadata: it is {size} bytes as JSON, more than the "
            f"{MAX_METADATA_BYTES} bytes allowed; keep large data in a file of its own"
        )
    return text


class _NotJsonData(Exception):
    """Internal: a value in the metadata is not plain JSON data (the message says where)."""


def _plain_json_data(value: Any, where: str, depth: int) -> Any:
    """A copy of ``value`` made of dicts, lists, str, int, float, bool and None.

    Refuses (with _NotJsonData naming the entry, e.g. ``metadata['a'][2]``) what JSON
    cannot hold exactly: keys that are not str (json.dumps would silently turn ``1``
    into ``"1"``), NaN and infinities, other types, and nesting deeper than
    MAX_METADATA_DEPTH.
    """
    if depth > MAX_METADATA_DEPTH:
        shown = where if len(where) <= 80 else where[:77] + "..."
        raise _NotJsonData(
            f"{shown} is nested more than {MAX_METADATA_DEPTH} levels deep (or contains itself)"
        )
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJsonData(f"{where} is {value!r}; JSON has no NaN or infinity")
        return value
    if isinstance(value, Mapping):
        plain = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotJsonData(
                    f"{where} has the key {key!r} of type {type(key).__name__}; "
                    "JSON keys must be str"
                )
            plain[key] = _plain_json_data(item, f"{where}[{key!r}]", depth + 1)
        return plain
    if isinstance(value, (list, tuple)):
        return [
            _plain_json_data(item, f"{where}[{index}]", depth + 1)
            for index, item in enumerate(value)
        ]
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise _NotJsonData(
        f"{where} is a {type(value).__name__} ({shown}), which JSON cannot hold; use "
        "dicts with str keys, lists, str, int, float, bool and None (convert numpy "
        "values with .tolist() or float())"
    )


def _little_endian(name: str, value: Any) -> np.ndarray:
    array = np.asarray(value)
    native = array.dtype.newbyteorder("=")
    if native not in _CODE_OF_DTYPE:
        raise TypeError(
            f"cannot save tensor {name!r} of dtype {array.dtype}: model files hold "
            "float32 and float64 tensors"
        )
    return np.ascontiguousarray(array, dtype=native.newbyteorder("<"))


def _tensor_bytes(array: np.ndarray) -> memoryview:
    """The raw bytes of a contiguous little-endian array, without copying them."""
    return memoryview(array.reshape(-1)).cast("B")  # type: ignore[arg-type]


def _refuse_non_finite_weights(model_name: str, name: str, array: np.ndarray) -> None:
    finite = np.isfinite(array)
    if finite.all():
        return
    where = tuple(int(i) for i in np.argwhere(~finite)[0])
    raise NonFiniteWeightsError(
        f"cannot save {model_name}: tensor {name!r} holds {int((~finite).sum())} NaN or "
        f"infinite values (the first at index {where}, {array[where]}); the training "
        "diverged: train again with a smaller learning rate"
    )


def _content_digest(
    fields: Mapping[str, str], tensors: Mapping[str, Any], data: Iterable[bytes | memoryview]
) -> str:
    """The SHA-256 (hex) that the ``digest`` field holds.

    It covers, in this order: a version tag; the ``__metadata__`` fields other than
    the digest and signature, and the tensor entries (name, dtype, shape, offsets),
    as one canonical JSON text (sorted keys, no spaces, ASCII) preceded by its
    length; then the data section, byte for byte. So any change to the weights,
    their layout, the architecture, the version or the user metadata changes it,
    while re-spacing the header (as another safetensors writer may) does not.
    """
    canonical = json.dumps(
        {"metadata": dict(fields), "tensors": dict(tensors)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode("ascii")
    hasher = hashlib.sha256(b"chainrule model digest v1\n")
    hasher.update(len(canonical).to_bytes(8, "little"))
    hasher.update(canonical)
    for chunk in data:
        hasher.update(chunk)
    return hasher.hexdigest()


def _key_bytes(key: Key) -> bytes:
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not isinstance(key, (bytes, bytearray)) or not key:
        raise TypeError("key must be non-empty bytes or str (a secret kept apart from the file)")
    return bytes(key)


def _sign(key: bytes, digest: str) -> str:
    """The HMAC-SHA256 (hex) of a content digest under ``key``."""
    return hmac.new(key, digest.encode("ascii"), hashlib.sha256).hexdigest()


def _nesting_depth(value: Any) -> int:
    """How deep dicts and lists nest in ``value`` (a scalar is 0), counted without
    recursion and up to one past MAX_CONFIG_DEPTH."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            depth += 1
            deepest = max(deepest, depth)
            if depth > MAX_CONFIG_DEPTH:
                return depth
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth) for child in children)
    return deepest


# --- loading --------------------------------------------------------------------------


@overload
def load(
    path: PathLike, *, with_metadata: Literal[False] = False, key: Key | None = None
) -> Module: ...


@overload
def load(
    path: PathLike, *, with_metadata: Literal[True], key: Key | None = None
) -> tuple[Module, dict[str, Any]]: ...


@overload
def load(
    path: PathLike, *, with_metadata: bool, key: Key | None = None
) -> Module | tuple[Module, dict[str, Any]]: ...


def load(
    path: PathLike, *, with_metadata: bool = False, key: Key | None = None
) -> Module | tuple[Module, dict[str, Any]]:
    """Rebuild a model saved by :func:`save`, and optionally return its metadata.

    The whole header is validated before anything is built: the length field, the
    JSON, the known keys and dtypes, the byte offsets (contiguous, in bounds,
    matching the shapes) and the metadata, including the user metadata (parsed as
    JSON data, never executed) and the architecture's nesting depth. Then the
    architecture is rebuilt from its JSON config, every tensor's name, shape and
    dtype is checked against it, the weights are read and checked against the
    file's SHA-256 digest (and signature, with ``key``) and for NaN and infinities,
    and only then loaded.

    Args:
        path: a file written by :func:`save` (a regular file: folders, FIFOs and
            devices are refused without reading them).
        with_metadata: also return the metadata given to :func:`save`.
        key: the secret the file was signed with (``save(..., key=key)``); the file
            is then refused unless its signature matches. ``None`` (the default):
            no signature needed; the digest is still checked when the file has one
            (files written by the ``safetensors`` package have none and load unchecked).

    Returns:
        The model (an ``MLP``, ``NeuronMLP``, ...) with the saved weights; with
        ``with_metadata=True``, ``(model, metadata)`` where ``metadata`` is a dict,
        empty when the file holds none.

    Raises:
        ModelFileError: the file is truncated, corrupted, tampered with (its digest or
            signature does not match), unsigned while ``key`` was given, holds NaN or
            infinite weights, its user metadata is not a JSON object within the
            limits, or its tensors do not fit the architecture it names; the
            message says what.
        FileNotFoundError: there is no such file.
        NotARegularFileError: ``path`` is a folder, FIFO, device or socket.
    """
    key_bytes = None if key is None else _key_bytes(key)
    with _open_regular_file(path) as handle:
        contents = _read_header(path, handle)
        if key_bytes is not None:
            _check_signature_present(path, contents)
        model = _build_architecture(path, contents.config, contents.layout)
        data = handle.read(contents.data_size)
    if len(data) != contents.data_size:
        raise ModelFileError(path, "the file changed size while it was being read")
    _verify_integrity(path, contents, data, key_bytes)
    state = {
        name: np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=begin)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))  # a native-order, writeable copy
        for name, (dtype, shape, begin) in contents.layout.items()
    }
    for name, array in state.items():
        if not np.isfinite(array).all():
            raise ModelFileError(
                path,
                f"tensor {_quoted(name)} holds NaN or infinite weights; a model must have "
                "finite weights (was it saved from a diverged training?)",
            )
    model.load_state_dict(state, strict=True)
    if with_metadata:
        return model, contents.user_metadata
    # A model saved by `chainrule train` comes back with its preprocessing, as a
    # TabularModel (still the network, plus predict/predict_proba on raw columns).
    from .tabular import from_loaded

    return from_loaded(model, contents.user_metadata, str(path))


def read_metadata(path: PathLike) -> dict[str, Any]:
    """The metadata given to :func:`save` for the model file at ``path``, without the model.

    The header is validated as :func:`load` validates it (length field, JSON, tensor
    entries and offsets, the architecture config's form, the user metadata), but no
    model is built and no weights are read, so the digest is not checked.

    Args:
        path: a file written by :func:`save`.

    Returns:
        The metadata as a dict; empty when the file holds none.

    Raises:
        ModelFileError: the header is truncated, corrupted or tampered with.
        FileNotFoundError: there is no such file.
        NotARegularFileError: ``path`` is a folder, FIFO, device or socket.
    """
    with _open_regular_file(path) as handle:
        return _read_header(path, handle).user_metadata


def _open_regular_file(path: PathLike) -> IO[bytes]:
    """``path`` opened for reading, after checking it is a regular file.

    Opened non-blocking, so a FIFO with no writer cannot hang the open, and checked
    on the open descriptor (not the name), so it cannot be swapped in between.
    """
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFileError(
                f"cannot load model file {os.fspath(path)!r}: it is {describe_file_type(mode)}, "
                "not a model file"
            )
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


@dataclass(frozen=True)
class _Header:
    """A validated header: the architecture config, the user metadata, where each
    tensor lies, and what the digest and signature cover."""

    config: dict[str, Any]
    user_metadata: dict[str, Any]
    layout: dict[str, tuple[np.dtype, tuple[int, ...], int]]  # name -> dtype, shape, begin
    data_size: int
    fields: dict[str, str]  # __metadata__ without the digest and signature
    tensors: dict[str, Any]  # the tensor entries as stored
    digest: str | None  # hex, None for files without one
    signature: str | None  # hex, None for unsigned files


def _read_header(path: PathLike, handle: IO[bytes]) -> _Header:
    """Read and validate everything before the data section; leave ``handle`` at its start."""
    file_size = os.fstat(handle.fileno()).st_size
    length_field = handle.read(_LENGTH_FIELD_BYTES)
    if len(length_field) < _LENGTH_FIELD_BYTES:
        raise ModelFileError(
            path,
            f"it is {file_size} bytes long, too short for the {_LENGTH_FIELD_BYTES}-byte "
            "header length field; the file is truncated or not a model file",
        )
    header_length = int.from_bytes(length_field, "little")
    if header_length > min(MAX_HEADER_BYTES, file_size - _LENGTH_FIELD_BYTES):
        raise ModelFileError(
            path,
            f"the header length field says {header_length} bytes, but "
            f"{_header_room(file_size)}; the file is truncated or not a model file",
        )
    header = _parse_header(path, handle.read(header_length))
    metadata = header.pop(_METADATA_KEY, None)
    config, user_metadata = _parse_metadata(path, metadata)
    data_size = file_size - _LENGTH_FIELD_BYTES - header_length
    layout = _parse_layout(path, header, data_size)
    fields = {k: v for k, v in metadata.items() if k not in (_DIGEST_FIELD, _SIGNATURE_FIELD)}
    return _Header(
        config,
        user_metadata,
        layout,
        data_size,
        fields,
        header,
        _hex_field(path, metadata, _DIGEST_FIELD, _DIGEST_PREFIX),
        _hex_field(path, metadata, _SIGNATURE_FIELD, _SIGNATURE_PREFIX),
    )


def _hex_field(path: PathLike, metadata: dict[str, Any], field: str, prefix: str) -> str | None:
    """The 64 hex digits of the digest or signature field, None when it is absent."""
    value = metadata.get(field)
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value.startswith(prefix)
        or len(value) != len(prefix) + 64
        or any(c not in "0123456789abcdef" for c in value[len(prefix) :])
    ):
        raise ModelFileError(
            path,
            f"{_METADATA_KEY!r}[{field!r}] is {_quoted(value)}, not {prefix!r} followed by 64 "
            "lowercase hex digits: the file is corrupted or was altered",
        )
    return value[len(prefix) :]


def _check_signature_present(path: PathLike, contents: _Header) -> None:
    if contents.signature is None:
        raise ModelFileError(
            path,
            "a signing key was given but the file is not signed: it was saved without "
            "key=, or its signature was removed; do not trust it",
        )


def _verify_integrity(path: PathLike, contents: _Header, data: bytes, key: bytes | None) -> None:
    """Check the digest (when the file has one) and, with ``key``, the signature."""
    if contents.digest is None and key is None:
        return  # written by the safetensors package or an older chainrule: nothing to check
    digest = _content_digest(contents.fields, contents.tensors, [data])
    if contents.digest is not None and not hmac.compare_digest(digest, contents.digest):
        raise ModelFileError(
            path,
            "its contents do not match the SHA-256 digest stored in it: the file is "
            "corrupted or was altered; use an intact copy",
        )
    if key is not None:
        if contents.digest is None or contents.signature is None:
            raise ModelFileError(path, "a signing key was given but the file is not signed")
        if not hmac.compare_digest(_sign(key, digest), contents.signature):
            raise ModelFileError(
                path,
                "its signature does not match the key: the file was altered or signed "
                "with another key; do not trust it",
            )


def _build_architecture(
    path: PathLike,
    config: dict[str, Any],
    layout: Mapping[str, tuple[np.dtype, tuple[int, ...], int]],
) -> Module:
    """A fresh model of the file's architecture, after checking the file's tensors fit it."""
    from . import nn

    model_type = config["type"]
    declared = _declared_weight_count(config)
    stored = sum(math.prod(shape) for _, shape, _ in layout.values())
    if declared is not None and declared > stored:
        # Checked before building, so a tampered config cannot make from_config
        # allocate a network far larger than the file (fewer weights in the config
        # than in the file is reported below, by name).
        raise ModelFileError(
            path,
            f"its {model_type} config describes {declared} weights, but the file holds "
            f"{stored}: the config or the tensors were changed",
        )
    try:
        model = nn.from_config(config)
    except (ValueError, TypeError, KeyError) as error:
        raise ModelFileError(
            path, f"its architecture (type {_quoted(model_type)}) cannot be rebuilt: {error}"
        ) from None
    expected = model.state_dict()
    missing = [name for name in expected if name not in layout]
    extra = [name for name in layout if name not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {_quoted_list(missing)}")
        if extra:
            parts.append(f"unexpected {_quoted_list(extra)}")
        raise ModelFileError(
            path,
            f"its tensors do not match its {model_type} architecture: {'; '.join(parts)}",
        )
    for name, reference in expected.items():
        dtype, shape, _ = layout[name]
        reference_array = np.asarray(reference)
        if shape != reference_array.shape:
            raise ModelFileError(
                path,
                f"tensor {_quoted(name)} has shape {shape}, but its {model_type} "
                f"architecture needs {reference_array.shape}",
            )
        if dtype.newbyteorder("=") != reference_array.dtype:
            raise ModelFileError(
                path,
                f"tensor {_quoted(name)} is {dtype.newbyteorder('=')}, but its {model_type} "
                f"architecture is {reference_array.dtype}",
            )
    return model


def _header_room(file_size: int) -> str:
    room = file_size - _LENGTH_FIELD_BYTES
    if room < MAX_HEADER_BYTES:
        return f"only {room} bytes follow it"
    return f"headers are limited to {MAX_HEADER_BYTES} bytes"


def _parse_header(path: PathLike, header_bytes: bytes) -> dict[str, Any]:
    try:
        text = header_bytes.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ModelFileError(path, f"the header is not UTF-8 text ({error})") from None
    if not text.startswith("{"):
        raise ModelFileError(path, "the header is not a JSON object (it must start with '{')")
    try:
        header = json.loads(text, object_pairs_hook=_refuse_duplicate_keys, parse_constant=_refuse)
    except (ValueError, RecursionError) as error:
        raise ModelFileError(path, f"the header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise ModelFileError(path, "the header is not a JSON object")
    return header


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice")
        result[key] = value
    return result


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _parse_metadata(path: PathLike, metadata: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The architecture config and the user metadata (empty if absent) of ``__metadata__``."""
    if metadata is None:
        raise ModelFileError(
            path, f"the header has no {_METADATA_KEY!r}: it is not a chainrule model file"
        )
    if not isinstance(metadata, dict):
        raise ModelFileError(path, f"{_METADATA_KEY!r} is not a JSON object")
    known = [*_METADATA_FIELDS, _USER_METADATA_FIELD, _DIGEST_FIELD, _SIGNATURE_FIELD]
    unknown = sorted(set(metadata) - set(known))
    if unknown:
        raise ModelFileError(
            path, f"{_METADATA_KEY!r} has unknown keys {_quoted_list(unknown)}; known: {known}"
        )
    for field in _METADATA_FIELDS:
        if not isinstance(metadata.get(field), str):
            raise ModelFileError(path, f"{_METADATA_KEY!r}[{field!r}] is missing or not a string")
    if metadata["format"] != FORMAT_NAME:
        raise ModelFileError(
            path, f"its format is {_quoted(metadata['format'])}, not {FORMAT_NAME!r}"
        )
    try:
        config = json.loads(
            metadata["config"],
            object_pairs_hook=_refuse_duplicate_keys,
            parse_constant=_refuse,
        )
    except (ValueError, RecursionError) as error:
        raise ModelFileError(path, f"the architecture config is not valid JSON ({error})") from None
    if not isinstance(config, dict) or not isinstance(config.get("type"), str):
        raise ModelFileError(
            path, "the architecture config is not a JSON object with a 'type' string"
        )
    if _nesting_depth(config) > MAX_CONFIG_DEPTH:
        raise ModelFileError(
            path,
            f"its architecture config nests more than {MAX_CONFIG_DEPTH} levels deep (modules "
            "inside modules); chainrule refuses such configs, whose forward pass would "
            "overflow the stack",
        )
    return config, _parse_user_metadata(path, metadata.get(_USER_METADATA_FIELD))


def _parse_user_metadata(path: PathLike, text: Any) -> dict[str, Any]:
    """The user metadata: a JSON object in a string, held to the limits save() applies."""
    if text is None:
        return {}  # files written without metadata, and all files from before it existed
    where = f"{_METADATA_KEY!r}[{_USER_METADATA_FIELD!r}]"
    if not isinstance(text, str):
        raise ModelFileError(path, f"{where} is not a string holding a JSON object")
    size = len(text.encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise ModelFileError(
            path, f"the user metadata is {size} bytes, more than the {MAX_METADATA_BYTES} allowed"
        )
    try:
        metadata = json.loads(
            text, object_pairs_hook=_refuse_duplicate_keys, parse_constant=_refuse
        )
    except (ValueError, RecursionError) as error:
        raise ModelFileError(path, f"the user metadata is not valid JSON ({error})") from None
    if not isinstance(metadata, dict):
        raise ModelFileError(
            path, f"the user metadata is {_json_kind(metadata)}, not a JSON object"
        )
    try:
        # The same rules as at saving: this catches numbers such as 1e999 that JSON
        # parses to infinity, and nesting deeper than save() would have written.
        plain: dict[str, Any] = _plain_json_data(metadata, "the user metadata", 0)
    except _NotJsonData as error:
        raise ModelFileError(path, str(error)) from None
    return plain


def _json_kind(value: Any) -> str:
    """What a parsed JSON value is, in JSON's own words (for messages)."""
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, str):
        return "a JSON string"
    if isinstance(value, bool) or value is None:
        return f"JSON {json.dumps(value)}"
    return "a JSON number"


def _parse_layout(
    path: PathLike, header: dict[str, Any], data_size: int
) -> dict[str, tuple[np.dtype, tuple[int, ...], int]]:
    """Check every tensor entry; return name -> (dtype, shape, begin offset)."""
    layout: dict[str, tuple[np.dtype, tuple[int, ...], int]] = {}
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        where = f"tensor {_quoted(name)}"
        if not isinstance(entry, dict):
            raise ModelFileError(path, f"{where}: its entry is not a JSON object")
        if set(entry) != _TENSOR_FIELDS:
            raise ModelFileError(
                path,
                f"{where}: its entry has keys {_quoted_list(sorted(entry))}, expected "
                f"{sorted(_TENSOR_FIELDS)}",
            )
        code = entry["dtype"]
        dtype = _DTYPE_OF_CODE.get(code) if isinstance(code, str) else None
        if dtype is None:
            raise ModelFileError(
                path,
                f"{where}: dtype {_quoted(entry['dtype'])} is not one of {sorted(_DTYPE_OF_CODE)}",
            )
        shape = entry["shape"]
        if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
            raise ModelFileError(
                path, f"{where}: shape {_quoted(shape)} is not a list of non-negative integers"
            )
        offsets = entry["data_offsets"]
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_count(n) for n in offsets)
            or offsets[0] > offsets[1]
        ):
            raise ModelFileError(
                path,
                f"{where}: data_offsets {_quoted(offsets)} is not [begin, end] with begin <= end",
            )
        begin, end = offsets
        expected_bytes = math.prod(shape) * dtype.itemsize
        if end - begin != expected_bytes:
            raise ModelFileError(
                path,
                f"{where}: shape {_quoted(shape)} of {entry['dtype']} needs {expected_bytes} "
                f"bytes, but its data_offsets span {end - begin}",
            )
        if end > data_size:
            raise ModelFileError(
                path,
                f"{where} ends at byte {end} of the data section, which has only "
                f"{data_size} bytes: the file is truncated",
            )
        layout[name] = (dtype, tuple(shape), begin)
        spans.append((begin, end, name))

    # The tensors must tile the data section exactly: no gaps, no overlaps, no tail.
    position = 0
    previous = None
    for begin, end, name in sorted(spans):
        if begin < position:
            raise ModelFileError(
                path,
                f"tensor {_quoted(name)} (bytes {begin}-{end}) overlaps tensor {_quoted(previous)}",
            )
        if begin > position:
            raise ModelFileError(
                path, f"there are unclaimed bytes {position}-{begin} before tensor {_quoted(name)}"
            )
        position = end
        previous = name
    if position != data_size:
        raise ModelFileError(
            path,
            f"the data section has {data_size} bytes but the tensors cover {position}: "
            "there are unclaimed bytes at the end",
        )
    return layout


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _declared_weight_count(config: Any) -> int | None:
    """How many numbers the architecture in ``config`` holds, for the types whose
    configs say so (MLP, NeuronMLP, Linear, Sequential of those); None otherwise."""
    if not isinstance(config, dict):
        return None
    model_type = config.get("type")
    bias = bool(config.get("bias", True))
    if model_type in ("MLP", "NeuronMLP"):
        sizes = config.get("sizes")
        if not isinstance(sizes, list) or len(sizes) < 2 or not all(_is_count(n) for n in sizes):
            return None  # from_config will say what is wrong with it
        return sum(
            n_in * n_out + (n_out if bias else 0) for n_in, n_out in itertools.pairwise(sizes)
        )
    if model_type == "Linear":
        n_in, n_out = config.get("in_features"), config.get("out_features")
        if not (isinstance(n_in, int) and isinstance(n_out, int)):
            return None
        return n_in * n_out + (n_out if bias else 0)
    if model_type == "Sequential" and isinstance(config.get("modules"), list):
        counts = [_declared_weight_count(module) for module in config["modules"]]
        if any(count is None for count in counts):
            return None
        return sum(count for count in counts if count is not None)
    if model_type in ("Sigmoid", "Tanh", "ReLU", "Softplus", "Identity", "Softmax"):
        return 0
    return None
