#!/usr/bin/python3
"""Writes the tiny PyTorch .bin checkpoints that tests/unit/test_torch_checkpoint.cpp and
test_checkpoint.cpp read (C++ cannot run torch.save at test time).

Run with Debian's Python, which has torch 1.13:
    /usr/bin/python3 tests/reference/make_torch_bin_fixtures.py
Output goes to tests/fixtures/torch_bin/ and is deterministic (torch.save writes no timestamps),
so rerunning it leaves the checked-in files unchanged.

Files:
  state_dict.bin / .json   F32, F16, BF16, a scalar, an empty tensor, a view with a storage
                           offset sharing its storage, non-contiguous views; the .json sidecar
                           holds every tensor's dtype, shape and row-major values.
  state_dict_protocol{3,4,5}.bin
                           the same state dict saved with pickle_protocol=3, 4 and 5 (4 and 5
                           add FRAME, SHORT_BINUNICODE, MEMOIZE and STACK_GLOBAL); values as in
                           state_dict.json.
  zip64.bin                state_dict.bin re-packed with ZIP64 records everywhere, as torch.save
                           writes them for shards over 4 GiB.
  compressed.bin           state_dict.bin re-packed with deflate (torch.save never compresses).
  os_system.bin            a valid archive whose pickle asks for os.system (built by hand from
                           pickle opcodes; nothing is executed, here or when reading it).
  int64.bin                a LongStorage, which a float checkpoint reader refuses.
  nested.bin               {'model': {'w': tensor}}, not a flat state dict.
  sharded/                 pytorch_model.bin.index.json with two shards and a config.json;
  sharded.json             expected values of the sharded checkpoint.
"""
import collections
import io
import json
import pathlib
import struct
import zipfile
import zlib

import torch

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "torch_bin"
DTYPE_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def expected(tensors):
    """The sidecar a C++ test compares against: dtype, shape, row-major values as float."""
    return {
        name: {
            "dtype": DTYPE_NAMES[t.dtype],
            "shape": list(t.shape),
            "values": t.float().flatten().tolist(),
        }
        for name, t in tensors.items()
    }


def save(obj, path, pickle_protocol=2):
    torch.save(obj, path, pickle_protocol=pickle_protocol)
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def write_json(obj, path):
    path.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}")


def state_dict_fixture():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.5 - 2.0
    other = torch.arange(6, dtype=torch.float32).reshape(2, 3) + 100.0
    sd = collections.OrderedDict()
    sd["f32"] = torch.tensor([[1.0, -2.5, 3.25], [1e-3, 1e30, -0.0]], dtype=torch.float32)
    # 2**-24 is the smallest F16 subnormal, 65504 the largest finite F16.
    sd["f16"] = torch.tensor([[1.5, -2.0], [2.0**-24, 65504.0]], dtype=torch.float16)
    sd["bf16"] = torch.tensor([1.0, -3.5, 0.1, 3.0e38], dtype=torch.bfloat16)
    sd["base"] = base
    sd["view"] = base[1:]  # storage offset 4, same storage as "base"
    sd["column"] = base[:, 1]  # offset 1, stride 4: non-contiguous
    sd["transposed"] = other.t()  # stride (1, 3): non-contiguous, own storage
    sd["scalar"] = torch.tensor(7.0)
    sd["empty"] = torch.zeros(0, 3)
    assert sd["view"].storage_offset() == 4 and not sd["column"].is_contiguous()
    assert sd["view"].storage().data_ptr() == sd["base"].storage().data_ptr()
    # What Module.state_dict() attaches; it reaches the pickle as a BUILD of the OrderedDict.
    sd._metadata = collections.OrderedDict([("", {"version": 1})])
    save(sd, OUT / "state_dict.bin")
    for protocol in (3, 4, 5):
        save(sd, OUT / f"state_dict_protocol{protocol}.bin", pickle_protocol=protocol)
    side = expected(sd)
    side["__shared_storage__"] = [["base", "view"], ["base", "column"]]
    write_json(side, OUT / "state_dict.json")


def read_entries(path):
    with zipfile.ZipFile(path) as z:
        return [(info.filename, z.read(info)) for info in z.infolist()]


def repack_deflated(src, dst):
    with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in read_entries(src):
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                       compress_type=zipfile.ZIP_DEFLATED)
    print(f"wrote {dst} ({dst.stat().st_size} bytes)")


def write_zip64(entries, dst):
    """A stored zip whose central directory keeps every size and offset in ZIP64 extra fields
    (0xffffffff in the 32-bit slots) and ends with ZIP64 end records, like a >4 GiB shard."""
    out = io.BytesIO()
    central = []
    for name, data in entries:
        name_bytes = name.encode()
        offset = out.tell()
        local_extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        # Pad the local header so data starts 64-byte aligned, as torch.save does ("FB" field).
        pad = (-(offset + 30 + len(name_bytes) + len(local_extra) + 4)) % 64
        local_extra += struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        crc = zlib.crc32(data)
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF,
                              0xFFFFFFFF, len(name_bytes), len(local_extra)))
        out.write(name_bytes + local_extra + data)
        extra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), offset)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, crc,
                                   0xFFFFFFFF, 0xFFFFFFFF, len(name_bytes), len(extra), 0, 0, 0,
                                   0, 0xFFFFFFFF) + name_bytes + extra)
    cd_offset = out.tell()
    for c in central:
        out.write(c)
    cd_size = out.tell() - cd_offset
    zip64_eocd = out.tell()
    out.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(entries),
                          len(entries), cd_size, cd_offset))
    out.write(struct.pack("<IIQI", 0x07064B50, 0, zip64_eocd, 1))
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                          0xFFFFFFFF, 0))
    dst.write_bytes(out.getvalue())
    print(f"wrote {dst} ({dst.stat().st_size} bytes)")


def os_system_fixture():
    # PROTO 2; GLOBAL 'os system'; BINUNICODE 'echo pwned'; TUPLE1; REDUCE; STOP.
    command = b"echo pwned"
    pickle_bytes = (b"\x80\x02" + b"cos\nsystem\n" + b"X" + struct.pack("<I", len(command)) +
                    command + b"\x85" + b"R" + b".")
    path = OUT / "os_system.bin"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in [("os_system/data.pkl", pickle_bytes), ("os_system/version", b"3\n")]:
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def sharded_fixture():
    folder = OUT / "sharded"
    folder.mkdir(exist_ok=True)
    shard1 = collections.OrderedDict(
        [("model.embed_tokens.weight", torch.tensor([[0.5, 1.5], [-1.0, 2.0]]))])
    shard2 = collections.OrderedDict([
        ("lm_head.weight", torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.bfloat16)),
        ("model.norm.weight", torch.tensor([1.0, 0.75], dtype=torch.float16)),
    ])
    files = ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"]
    weight_map = {}
    for file, shard in zip(files, [shard1, shard2]):
        save(shard, folder / file)
        weight_map.update({name: file for name in shard})
    total = sum(t.numel() * t.element_size() for s in (shard1, shard2) for t in s.values())
    write_json({"metadata": {"total_size": total}, "weight_map": weight_map},
               folder / "pytorch_model.bin.index.json")
    write_json({"model_type": "llama_moe", "hidden_size": 2}, folder / "config.json")
    write_json(expected({**shard1, **shard2}), OUT / "sharded.json")


def check_round_trip():
    """Every fixture meant to load must load in torch itself, values unchanged."""
    sd = torch.load(OUT / "state_dict.bin")
    protocols = [OUT / f"state_dict_protocol{p}.bin" for p in (3, 4, 5)]
    for path in [OUT / "zip64.bin"] + protocols:
        again = torch.load(path)
        assert list(again) == list(sd)
        for name in sd:
            assert torch.equal(again[name], sd[name]), (path, name)
    with zipfile.ZipFile(OUT / "zip64.bin") as z:
        assert z.testzip() is None


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    state_dict_fixture()
    write_zip64(read_entries(OUT / "state_dict.bin"), OUT / "zip64.bin")
    repack_deflated(OUT / "state_dict.bin", OUT / "compressed.bin")
    os_system_fixture()
    save({"ids": torch.arange(3)}, OUT / "int64.bin")
    save({"model": {"w": torch.ones(2)}}, OUT / "nested.bin")
    sharded_fixture()
    check_round_trip()


if __name__ == "__main__":
    main()
