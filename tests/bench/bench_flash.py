"""Flasher benchmark: the same file target written by dd, unxz + dd, and the flasher.

Run: python tests/bench/bench_flash.py [--size-mb 384] [--runs 3] [--dir DIR]
Prints each median time and throughput, and the ratios of BRIEF section 6: uncompressed write
at least 0.95x `dd bs=1M`; .img.xz faster than `unxz` then `dd`; verify no slower than write.
dd runs with conv=fsync because the flasher fsyncs too (plain dd stops at the page cache).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("APPLIANCE_FLASH_PROGRESS", "none")

from appliance.flash import readback, source, writer  # noqa: E402

MiB = 1 << 20


def make_image(path: Path, size_mb: int) -> None:
    """Write an OS-image-like file: incompressible runs, text-like runs and zeros."""
    rnd = random.Random(1)
    text = b"".join(b"/usr/lib/python3/dist-packages/module_%06d.py\n" % i for i in range(30000))
    with open(path, "wb") as f:
        for _ in range(size_mb):
            kind = rnd.random()
            if kind < 0.45:
                f.write(os.urandom(MiB))
            elif kind < 0.7:
                start = rnd.randrange(len(text) - MiB)
                f.write(text[start : start + MiB])
            else:
                f.write(bytes(MiB))


def drop_cache(*paths: Path) -> None:
    """Evict files from the page cache so every run reads and writes the disk."""
    for path in paths:
        if path.exists():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def cpu_seconds() -> float:
    """Return the CPU time (user + system) of this process and its finished children so far."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn, cpu: dict, name: str) -> float:
    """Return the wall time of fn(); add its CPU time to cpu[name]."""
    start, start_cpu = time.perf_counter(), cpu_seconds()
    fn()
    cpu[name] = cpu_seconds() - start_cpu
    return time.perf_counter() - start


def run_dd(src: Path, target: Path) -> None:
    """Copy like the blog does (bs=1M), flushed like the flasher."""
    subprocess.run(
        ["dd", "bs=1M", f"if={src}", f"of={target}", "conv=fsync"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_unxz_dd(xz: Path, work: Path, target: Path) -> None:
    """Decompress to a temporary file with unxz, then dd it: the manual recipe."""
    tmp = work / "unxz.img"
    with open(tmp, "wb") as out:
        subprocess.run(["unxz", "-c", str(xz)], check=True, stdout=out)
    run_dd(tmp, target)
    tmp.unlink()


def run_flasher(image_path: Path, target: Path, cpu: dict, prefix: str) -> tuple:
    """Write with the flasher's streaming writer (fsync included), then verify."""
    image = source.inspect(str(image_path))
    fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        start, start_cpu = time.perf_counter(), cpu_seconds()
        # Exactly as the flasher writes a file target (writer.strategy decides hashing, writeback).
        result = writer.open_and_copy(image.open, fd, **writer.strategy(image.kind, False))
        write = time.perf_counter() - start
        cpu[prefix + "write"], start_cpu = cpu_seconds() - start_cpu, cpu_seconds()
        verify = readback.verify(fd, result, image_path=str(image_path))
        cpu[prefix + "verify"] = cpu_seconds() - start_cpu
    finally:
        os.close(fd)
    return write, verify


def one_run(work: Path, img: Path, xz: Path, order: list, cpu: dict) -> dict:
    """Time every method once, in the given order; return seconds per method (CPU into cpu)."""
    target, out = work / "target.img", {}
    for name in order:
        target.unlink(missing_ok=True)
        drop_cache(img, xz)
        os.sync()  # start every method with no writeback of the previous one pending
        if name == "dd":
            out["dd"] = timed(lambda: run_dd(img, target), cpu, "dd")
        elif name == "unxz+dd":
            out["unxz+dd"] = timed(lambda: run_unxz_dd(xz, work, target), cpu, "unxz+dd")
        else:
            prefix, path = ("xz ", xz) if name == "flasher xz" else ("", img)
            out[prefix + "write"], out[prefix + "verify"] = run_flasher(path, target, cpu, prefix)
    return out


def measure(work: Path, img: Path, xz: Path, runs: int) -> tuple:
    """Return median seconds per method and median per-run ratios (runs interleaved, so the
    machine's load drifts over all methods alike)."""
    order = ["dd", "flasher", "unxz+dd", "flasher xz"]
    samples, cpus = [], []
    for n in range(runs):
        cpus.append({})
        samples.append(one_run(work, img, xz, order if n % 2 == 0 else order[::-1], cpus[-1]))
        print(f"  run {n + 1}/{runs} done", file=sys.stderr)
    times = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    times.update({"cpu " + k: statistics.median(c[k] for c in cpus) for k in cpus[0]})
    ratios = {
        "write vs dd": statistics.median(s["dd"] / s["write"] for s in samples),
        "unxz+dd vs xz": statistics.median(s["unxz+dd"] / s["xz write"] for s in samples),
        "verify / write": statistics.median(s["verify"] / s["write"] for s in samples),
        "xz verify / xz write": statistics.median(s["xz verify"] / s["xz write"] for s in samples),
    }
    return times, ratios


def machine() -> str:
    """Return one line describing this machine."""
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def report(times: dict, ratios: dict, size: int) -> None:
    """Print times, throughput and the ratios (medians of per-run ratios)."""
    for name in ("dd", "write", "verify", "unxz+dd", "xz write", "xz verify"):
        wall, cpu = times[name], times["cpu " + name]
        print(f"{name:>10}: {wall:7.2f} s  {size / wall / 1e6:7.1f} MB/s  (CPU {cpu:.2f} s)")
    print(f"uncompressed write vs dd bs=1M:  {ratios['write vs dd']:.2f}x (target >= 0.95)")
    print(f".img.xz vs unxz then dd:         {ratios['unxz+dd vs xz']:.2f}x faster (target > 1)")
    print(f"verify / write (.img):           {ratios['verify / write']:.2f} (target <= 1)")
    print(f"verify / write (.img.xz):        {ratios['xz verify / xz write']:.2f} (target <= 1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=384)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    for tool in ("dd", "xz", "unxz"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed (Debian: apt install coreutils xz-utils)")
    work = Path(tempfile.mkdtemp(prefix="bench-flash-", dir=args.dir))
    try:
        img, xz = work / "image.img", work / "image.img.xz"
        print(f"preparing a {args.size_mb} MiB image in {work} ...", file=sys.stderr)
        make_image(img, args.size_mb)
        subprocess.run(["xz", "-k", "-3", "-T1", str(img)], check=True)
        print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f} at start")
        print(
            f"image: {args.size_mb} MiB, .xz {xz.stat().st_size / 1e6:.0f} MB; "
            f"median of {args.runs} runs; file target on the same disk"
        )
        times, ratios = measure(work, img, xz, args.runs)
        report(times, ratios, img.stat().st_size)
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
