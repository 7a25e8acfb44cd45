#!/usr/bin/env python3
"""Cross-check Cordon's ELF loader against Linux (dev tool, needs root + bpf()).

For every object in tests/bpf, runs the `export` example of cordon-object
(what the loader produced: relocated instructions using the index pseudo
sources, maps, kfunc names, kernel-sanitized BTF, func/line info), loads it
with raw bpf() syscalls -- maps from the MapSpecs (initial data, frozen
.rodata, static prog_array / map-in-map slots), `fd_array` for lddw src=5/6,
kfunc ids looked up by name in vmlinux BTF, func_info/line_info -- and runs
each program once with BPF_PROG_TEST_RUN on a 100-byte zero packet.

Usage: tests/bpf/kernel_check.py [path/to/export-binary]
(default: build it with cargo into $CARGO_TARGET_DIR or target/).
Prints one line per object; exits 1 if the kernel rejects anything other
than the expected cases (kfuncs missing from vmlinux).
"""
import ctypes
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SYS_BPF = 321  # x86-64
MAP_CREATE, MAP_UPDATE, PROG_LOAD, PROG_TEST_RUN, BTF_LOAD, MAP_FREEZE = 0, 2, 5, 10, 18, 22
BPF_F_RDONLY_PROG = 0x80
PERF_EVENT_ARRAY = 4

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
_keep = []


def buf(data):
    b = ctypes.create_string_buffer(bytes(data), max(len(data), 1))
    _keep.append(b)
    return ctypes.addressof(b)


def bpf(cmd, attr):
    a = ctypes.create_string_buffer(attr + b"\0" * (160 - len(attr)), 160)
    _keep.append(a)
    r = libc.syscall(SYS_BPF, cmd, a, 160)
    return r, ctypes.get_errno(), a


def vmlinux_funcs():
    out = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux"],
                         capture_output=True, text=True, check=True).stdout
    ids = {}
    for line in out.splitlines():
        if "] FUNC '" in line:
            ids[line.split("'")[1]] = int(line[1:line.index("]")])
    return ids


class Rejected(Exception):
    pass


def parse_export(text):
    obj = {"btf": None, "maps": [], "slots": [], "kfuncs": [], "progs": []}
    for line in text.splitlines():
        w = line.split(" ")
        if w[0] == "btf":
            obj["btf"] = bytes.fromhex(w[1])
        elif w[0] == "map":
            obj["maps"].append({"name": w[1], "f": [int(x) for x in w[2:11]], "init": w[11], "inner": None})
        elif w[0] == "inner":
            obj["maps"][-1]["inner"] = [int(x) for x in w[1:10]]
        elif w[0] == "slot":
            obj["slots"].append((w[1], int(w[2]), w[3], w[4]))
        elif w[0] == "kfunc":
            obj["kfuncs"].append(w[1])
        elif w[0] == "prog":
            obj["progs"].append({"name": w[1], "type": int(w[2]), "code": bytes.fromhex(w[3]), "fi": [], "li": []})
        elif w[0] in ("funcinfo", "lineinfo") and len(w) > 1 and w[1]:
            key = "fi" if w[0] == "funcinfo" else "li"
            obj["progs"][-1][key] = [tuple(int(x) for x in r.split(":")) for r in w[1].split(",")]
    return obj


def load_and_run(obj, vm, pkt):
    btf_fd = 0
    if obj["btf"]:
        log = ctypes.create_string_buffer(1 << 16)
        _keep.append(log)
        d = obj["btf"]
        r, e, _ = bpf(BTF_LOAD, struct.pack("<QQIII", buf(d), ctypes.addressof(log), len(d), 1 << 16, 1))
        if r < 0:
            raise Rejected(f"BTF: {os.strerror(e)}: {log.value.decode(errors='replace')[-300:]}")
        btf_fd = r

    def create(f, inner_fd=0):
        t, ks, vs, me, fl, bk, bv, extra, kbtf = f
        if not kbtf:
            bk = bv = 0
        if t == PERF_EVENT_ARRAY and me == 0:
            me = os.cpu_count()
        attr = struct.pack("<IIIIIII16sIIIIIQ", t, ks, vs, me, fl, inner_fd, 0, b"", 0,
                           btf_fd if kbtf else 0, bk, bv, 0, extra)
        r, e, _ = bpf(MAP_CREATE, attr)
        if r < 0:
            raise Rejected(f"map type {t}: {os.strerror(e)}")
        return r

    fds, by_name = [], {}
    for m in obj["maps"]:
        fd = create(m["f"], create(m["inner"]) if m["inner"] else 0)
        fds.append(fd)
        by_name[m["name"]] = fd
        if m["init"] != "-":
            val = bytes.fromhex(m["init"])
            r, e, _ = bpf(MAP_UPDATE, struct.pack("<IIQQQ", fd, 0, buf(b"\0" * 4), buf(val), 0))
            if r != 0:
                raise Rejected(f"initial value of {m['name']}: {os.strerror(e)}")
            if m["f"][4] & BPF_F_RDONLY_PROG:
                bpf(MAP_FREEZE, struct.pack("<I", fd))
    for (mname, idx, kind, target) in obj["slots"]:
        if kind == "map":
            bpf(MAP_UPDATE, struct.pack("<IIQQQ", by_name[mname], 0, buf(struct.pack("<I", idx)),
                                        buf(struct.pack("<I", by_name[target])), 0))
    fd_array = buf(b"".join(struct.pack("<i", f) for f in fds))

    prog_fds, results = {}, {}
    for p in obj["progs"]:
        code = bytearray(p["code"])
        for i in range(0, len(code), 8):
            if code[i] == 0x85 and code[i + 1] >> 4 == 2:  # kfunc call: imm = index into kfuncs
                name = obj["kfuncs"][struct.unpack_from("<i", code, i + 4)[0]]
                if name not in vm:
                    return f"kfunc {name} is not in vmlinux (expected for Cordon test kfuncs)"
                struct.pack_into("<i", code, i + 4, vm[name])
        log = ctypes.create_string_buffer(1 << 20)
        _keep.append(log)
        fi = b"".join(struct.pack("<II", *r) for r in p["fi"])
        li = b"".join(struct.pack("<IIII", *r) for r in p["li"])
        attr = struct.pack("<IIQQIIQII16sIIIIQIIQIIIIQ", p["type"], len(code) // 8, buf(code), buf(b"GPL\0"),
                           1, 1 << 20, ctypes.addressof(log), 0, 0, p["name"][:15].encode(), 0, 0,
                           btf_fd if p["fi"] else 0, 8 if p["fi"] else 0, buf(fi) if fi else 0, len(p["fi"]),
                           16 if p["li"] else 0, buf(li) if li else 0, len(p["li"]), 0, 0, 0, fd_array)
        r, e, _ = bpf(PROG_LOAD, attr)
        if r < 0:
            raise Rejected(f"{p['name']}: {os.strerror(e)}: {log.value.decode(errors='replace')[-600:]}")
        prog_fds[p["name"]] = r
    for (mname, idx, kind, target) in obj["slots"]:
        if kind == "prog":
            bpf(MAP_UPDATE, struct.pack("<IIQQQ", by_name[mname], 0, buf(struct.pack("<I", idx)),
                                        buf(struct.pack("<I", prog_fds[target])), 0))
    for name, fd in prog_fds.items():
        r, e, a = bpf(PROG_TEST_RUN, struct.pack("<IIIIQQIIIIQQ", fd, 0, len(pkt), 0, buf(pkt), 0, 1, 0, 0, 0, 0, 0))
        results[name] = struct.unpack_from("<i", a.raw, 4)[0] if r == 0 else "test_run: " + os.strerror(e)
    return " ".join(f"{k}={v}" for k, v in results.items())


def main():
    exporter = sys.argv[1] if len(sys.argv) > 1 else None
    if exporter is None:
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        subprocess.run(["cargo", "build", "-q", "-p", "cordon-object", "--example", "export"], cwd=ROOT, check=True)
        exporter = os.path.join(target, "debug", "examples", "export")
    vm = vmlinux_funcs()
    failed = False
    for f in sorted(os.listdir(HERE)):
        if not f.endswith(".o"):
            continue
        text = subprocess.run([exporter, os.path.join(HERE, f)], capture_output=True, text=True, check=True).stdout
        try:
            print(f"{f}: {load_and_run(parse_export(text), vm, bytes(100))}")
        except Rejected as ex:
            failed = True
            print(f"{f}: REJECTED {ex}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
