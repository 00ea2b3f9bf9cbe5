"""The one table of ``benchmarks/gpu_check.sh``: reads the logs its stages left in a folder and prints what
issue 24 asks for, ours beside the reference from the same run, with ratios.

    python benchmarks/gpu_table.py /tmp/gpu_check
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

NUM = r"([0-9][0-9.]*)"


def read(folder: Path, name: str) -> str:
    path = folder / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def find(text: str, pattern: str) -> float | None:
    m = re.search(pattern, text)
    return float(m.group(1)) if m else None


def stages(folder: Path) -> dict[str, tuple[str, str]]:
    path = folder / "stages.tsv"
    rows = [line.split("\t") for line in path.read_text().splitlines()] if path.exists() else []
    return {r[0]: (r[1], r[2]) for r in rows if len(r) == 3}


def fmt(x: float | None, spec: str = ".0f") -> str:
    return "-" if x is None else format(x, spec)


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def trainer_rows(folder: Path) -> list[tuple[str, str, str]]:
    ref = find(read(folder, "ref_tuned"), r"samples/s=" + NUM)
    ref_c = find(read(folder, "ref_compile"), r"samples/s=" + NUM)
    rows = [("reference, tuned (samples/s)", fmt(ref), ratio(ref, ref_c)),
            ("reference, tuned + compile (samples/s)", fmt(ref_c), "1.00x" if ref_c else "-")]
    for log, label in (("ours", ""), ("ours_compile", ", compiled")):
        text = read(folder, log)
        plain = find(text, r"plain\s+batch=\d+ samples/s=" + NUM)
        cached = find(text, r"cached4\s+batch=\d+ samples/s=" + NUM)
        rows += [(f"ours, plain step{label} (samples/s)", fmt(plain), ratio(plain, ref_c)),
                 (f"ours, cached x4{label} (samples/s)", fmt(cached), ratio(cached, ref_c)),
                 (f"ours, cached x4 cost per sample vs plain{label}", ratio(plain, cached), "target <= 1.40x")]
    return rows


def other_rows(folder: Path) -> list[tuple[str, str, str]]:
    syncs = read(folder, "syncs")
    counted = re.findall(r"(\w+)\s+operators/step=.*host syncs/step=" + NUM, syncs)  # --count (dry run, CPU)
    if "raised none" in syncs:
        sync_line = "0 in the timed steps"
    elif counted:
        sync_line = ", ".join(f"{mode} {n}" for mode, n in counted) + " per step (CPU count)"
    else:
        sync_line = (syncs.strip().splitlines() or ["not run"])[-1][:60]
    ref_m = read(folder, "ref_metrics")
    ours_m = read(folder, "metrics")
    ref_s = find(ref_m, r"N=100000 count: " + NUM + " ms")
    ours_s = find(ours_m, r"100000 count\s+" + NUM)
    packed = read(folder, "packed")
    one = find(packed, r"1 processes at once: .*together " + NUM)
    four = find(packed, r"4 processes at once: .*together " + NUM)
    phase1 = read(folder, "phase1")
    tests = read(folder, "tests").strip().splitlines()
    return [("host syncs in our steps (set_sync_debug_mode)", sync_line, "target 0"),
            ("metrics N=100,000: reference count (ms)", fmt(ref_s), ""),
            ("metrics N=100,000: ours, both directions (ms)", fmt(None if ours_s is None else ours_s * 1000),
             ratio(None if ours_s is None else ours_s * 1000, ref_s)),
            ("1 trial alone (samples/s)", fmt(one), ""),
            ("4 packed trials together (samples/s)", fmt(four), ratio(four, one) + " of one alone"),
            ("phase1_short: trials/hour", fmt(find(phase1, NUM + r" trials/hour")), ""),
            ("phase1_short: GPU busy once trials started (%)",
             fmt(find(phase1, r"once the trials started: " + NUM + "% busy")), "target >= 80"),
            ("CUDA tests", tests[-1][:60] if tests else "not run", "")]


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/gpu_check")
    rows = trainer_rows(folder) + other_rows(folder)
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>12}  vs reference / target")
    for name, value, rel in rows:
        print(f"{name:<{width}}  {value:>12}  {rel}")
    st = stages(folder)
    print("stages: " + ", ".join(f"{k} {'skipped' if rc == 'skipped' else f'rc={rc} {s}s'}"
                                 for k, (rc, s) in st.items()))


if __name__ == "__main__":
    main()
