"""Minimal safetensors reader/writer on numpy (no dependency on the safetensors package).

Format: 8-byte little-endian header length N, N bytes of JSON (padded with spaces to a
multiple of 8), then the tensor data back to back, row-major, little-endian.
BF16 is stored as the upper 16 bits of an IEEE float32 (round to nearest even on write).
"""

import json
import os
import struct

import numpy as np

# safetensors dtype name -> numpy dtype (BF16 handled separately as uint16 bits)
_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


class BF16:
    """Marker wrapper: write this float array as BF16."""

    def __init__(self, array):
        self.array = np.asarray(array, dtype=np.float32)


def bf16_bits_to_f32(bits):
    """uint16 BF16 bit patterns -> float32 values (exact)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(values):
    """float32 values -> uint16 BF16 bits, rounded to nearest even (NaN kept as NaN)."""
    u = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounding = ((u >> 16) & 1) + np.uint32(0x7FFF)
    bits = ((u + rounding) >> 16).astype(np.uint16)
    nan = np.isnan(values)
    bits[nan] = 0x7FC0
    return bits


def round_to_bf16(values):
    """Round float32 values to the nearest BF16 value, returned as float32."""
    return bf16_bits_to_f32(f32_to_bf16_bits(values))


def read_header(path):
    """Return (header dict without __metadata__, metadata dict, data start offset)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    return header, metadata, 8 + n


def load(path, upcast_bf16=True):
    """Read a .safetensors file into {name: numpy array}.

    BF16 tensors become float32 when upcast_bf16, else raw uint16 bits.
    """
    header, _, start = read_header(path)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        shape = tuple(info["shape"])
        if info["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").reshape(shape)
            out[name] = bf16_bits_to_f32(bits) if upcast_bf16 else bits.copy()
        else:
            dt = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
            out[name] = np.frombuffer(raw, dtype=dt).reshape(shape).astype(dt.newbyteorder("="))
    return out


def dtypes(path):
    """{name: safetensors dtype string} of a file."""
    header, _, _ = read_header(path)
    return {name: info["dtype"] for name, info in header.items()}


def save(path, tensors, metadata=None):
    """Write {name: numpy array or BF16(array)} as .safetensors, tensors in name order."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    chunks = []
    offset = 0
    for name in sorted(tensors):
        value = tensors[name]
        if isinstance(value, BF16):
            dtype_name = "BF16"
            array = value.array
            raw = f32_to_bf16_bits(array).astype("<u2").tobytes()
        else:
            array = np.ascontiguousarray(value)
            dtype_name = _NAMES[array.dtype]
            raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": dtype_name,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)


def load_model_dir(model_dir):
    """Load every weight of a model folder: model.safetensors, a sharded safetensors index,
    pytorch_model.bin or a sharded .bin index. Returns {name: float32/int numpy array}."""
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(single):
        return load(single)
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        return _load_sharded(model_dir, index, load)
    bin_single = os.path.join(model_dir, "pytorch_model.bin")
    if os.path.exists(bin_single):
        return _load_torch_bin(bin_single)
    bin_index = os.path.join(model_dir, "pytorch_model.bin.index.json")
    if os.path.exists(bin_index):
        return _load_sharded(model_dir, bin_index, _load_torch_bin)
    raise FileNotFoundError(f"no weights found in {model_dir}")


def _load_sharded(model_dir, index_path, loader):
    """Load every shard named in an index's weight_map and check all keys were found."""
    with open(index_path) as f:
        weight_map = json.load(f)["weight_map"]
    out = {}
    for shard in sorted(set(weight_map.values())):
        out.update(loader(os.path.join(model_dir, shard)))
    missing = set(weight_map) - set(out)
    if missing:
        raise KeyError(f"keys listed in {index_path} but absent from shards: {sorted(missing)[:5]}")
    return out


def _load_torch_bin(path):
    """Load a torch.save'd state dict (needs torch); BF16/F16 are upcast to float32."""
    import torch

    state = torch.load(path, map_location="cpu")
    out = {}
    for name, t in state.items():
        if t.is_floating_point():
            t = t.float()
        out[name] = t.numpy()
    return out
