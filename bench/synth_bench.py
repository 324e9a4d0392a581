#!/usr/bin/env python3
"""Synth benchmark: wall time of ``cdk synth`` of the platform app against the floor.

The floor is ``bench/floor_app``: the same pinned CDK CLI, the same Python (the project venv, via the same
``"app": "python app.py"`` command), the same jsii runtime and package cache, the same environment
(``scripts/env.sh``), the same command line and the same feature-flag context, synthesizing an app with
one empty stack and no cdk-nag. Whatever the platform app costs above the floor is the cost of what it
builds and checks; the fixed cost of the toolchain is in both.

Method: one untimed warm-up of each app, then N timed runs of each, alternating (full, floor, full, ...),
every run into a fresh temporary output directory (``-o``), so nothing is reused from a ``cdk.out``.
Reports median / min / max wall time of each, the ratio of the medians and whether it meets the goal
(full synth <= 1.5 x floor). Child CPU time (user + sys of the waited-for processes) is reported too: it
is less sensitive to other load on the machine than wall time.

``--breakdown`` also passes ``-c @aws-cdk/core.slowSynthThreshold=0`` to both apps, which makes
aws-cdk-lib write its own phase timers (``performance-counters.json``) into the output directory, and
reports their medians. ``--env KEY=VALUE`` sets a variable for both apps (e.g. ``CDK_VALIDATION=false``
turns off aws-cdk-lib's built-in CloudFormation validation).

Usage (from anywhere; stdlib only)::

    python bench/synth_bench.py                 # stage dev, 5 runs each, print the tables
    python bench/synth_bench.py --stage prod -n 9 --breakdown
    python bench/synth_bench.py --write         # also update this run's block in bench/README.md "## Synth"

Exit code: 0 whether or not the goal is met (this is a benchmark, not a test); 1 if a synth fails; 2 if
the floor's cdk.json has drifted from the app's (fix with ``--sync-floor``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_ROOT = BENCH_DIR.parent
FLOOR_DIR_NAME = "floor_app"
README_NAME = "README.md"
SECTION_TITLE = "## Synth"
GOAL_RATIO = 1.5
# cdk.json keys of the app that do not affect `cdk synth` and are left out of the floor's copy.
NON_SYNTH_KEYS = ("watch",)
# Context keys that configure the platform app, not the CDK: left out of the floor's copy.
APP_ONLY_CONTEXT_KEYS = ("stages",)
# aws-cdk-lib writes performance-counters.json when synth per stack takes at least this long (ms).
SLOW_SYNTH_CONTEXT = "@aws-cdk/core.slowSynthThreshold"
COUNTERS_FILE = "performance-counters.json"
# (label, counter) of the breakdown table; all counters are milliseconds, measured inside the jsii kernel.
PHASES = (
    ("kernel start to `App()` (jsii load, imports)", "phase:Load"),
    ("construction", "phase:Construction"),
    ("synthesis", "phase:Synthesis"),
    ("of which: validation (plugins + built-in CloudFormation)", "validateTemplates"),
    ("of which: CloudFormation validation of the templates", "CloudFormationValidate.validate"),
)
# What `source_digest` hashes: the inputs of the full app's synth.
APP_SOURCE_FILES = ("app.py", "cdk.json")
APP_SOURCE_DIRS = ("stacks", "constructs/ml_platform", "training_code")
OUTSIDE_LABEL = "outside those phases (CLI, Python start, jsii kernel and Python exit)"
BLOCK_BEGIN = "<!-- synth-bench:begin {key} -->"
BLOCK_END = "<!-- synth-bench:end {key} -->"


@dataclass
class Series:
    """The timed runs of one app."""

    label: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    counters: list[dict[str, float]] = field(default_factory=list)
    stacks: int = 0
    resources: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    def counter_median(self, name: str) -> float:
        """Median of a perf counter over the runs, in seconds (0 where a run did not record it)."""
        return statistics.median(c.get(name, 0.0) for c in self.counters) / 1000


@dataclass(frozen=True)
class Settings:
    stage: str
    runs: int
    env: tuple[tuple[str, str], ...]
    breakdown: bool

    @property
    def key(self) -> str:
        """Identifies this configuration's block in the README."""
        return " ".join([f"stage={self.stage}", *(f"{k}={v}" for k, v in self.env)])

    def argv(self) -> list[str]:
        args = ["--stage", self.stage, "-n", str(self.runs)]
        for k, v in self.env:
            args += ["--env", f"{k}={v}"]
        return [*args, *(["--breakdown"] if self.breakdown else []), "--write"]


class SynthError(RuntimeError):
    """A ``cdk synth`` that exited non-zero."""


def bench_env(root: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of ``source scripts/env.sh`` in ``root``, plus ``extra`` (the same for both apps)."""
    script = f"cd {shlex.quote(str(root))} && source scripts/env.sh && env -0"
    out = subprocess.run(["bash", "-c", script], check=True, capture_output=True).stdout
    env: dict[str, str] = {}
    for item in out.decode().split("\0"):
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    # Set by bash itself, not by env.sh.
    for key in ("_", "SHLVL", "OLDPWD", "PWD"):
        env.pop(key, None)
    env.update(extra)
    return env


def expected_floor_config(app_config: Mapping[str, Any]) -> dict[str, Any]:
    """The floor's cdk.json: the app's, minus what only the platform app reads."""
    config = {k: v for k, v in app_config.items() if k not in NON_SYNTH_KEYS}
    context = config.get("context", {})
    config["context"] = {k: v for k, v in context.items() if k not in APP_ONLY_CONTEXT_KEYS}
    return config


def check_floor(root: Path, floor_dir: Path, sync: bool) -> None:
    """Make sure the floor's cdk.json equals the app's minus the stages (or rewrite it with ``sync``)."""
    app_config = json.loads((root / "cdk.json").read_text())
    expected = expected_floor_config(app_config)
    floor_json = floor_dir / "cdk.json"
    actual = json.loads(floor_json.read_text()) if floor_json.exists() else None
    if actual == expected:
        return
    if sync:
        floor_json.write_text(json.dumps(expected, indent=2) + "\n")
        print(f"synced {floor_json} with {root / 'cdk.json'} (minus {', '.join(APP_ONLY_CONTEXT_KEYS)})")
        return
    print(
        f"error: {floor_json} differs from {root / 'cdk.json'} minus context "
        f"{', '.join(APP_ONLY_CONTEXT_KEYS)} and {', '.join(NON_SYNTH_KEYS)}: the floor would not use the "
        "same CLI configuration and feature flags. Re-run with --sync-floor to rewrite it.",
        file=sys.stderr,
    )
    raise SystemExit(2)


def synth_command(cdk: Path, settings: Settings, outdir: Path) -> list[str]:
    # The same command line for both apps; the floor ignores the stage.
    command = [str(cdk), "synth", "--quiet", "-c", f"stage={settings.stage}"]
    if settings.breakdown:
        command += ["-c", f"{SLOW_SYNTH_CONTEXT}=0"]
    return [*command, "-o", str(outdir)]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class SynthRun:
    wall: float
    cpu: float
    counters: dict[str, float]
    stacks: int
    resources: int


def assembly_size(outdir: Path) -> tuple[int, int]:
    """Number of stack templates and of CloudFormation resources in them (nested assemblies included)."""
    templates = list(outdir.rglob("*.template.json"))
    resources = sum(len(json.loads(t.read_text()).get("Resources", {})) for t in templates)
    return len(templates), resources


def timed_synth(cdk: Path, settings: Settings, cwd: Path, env: Mapping[str, str]) -> SynthRun:
    """One ``cdk synth`` of the app in ``cwd`` into a fresh output directory."""
    with tempfile.TemporaryDirectory(prefix="synth-bench-") as tmp:
        outdir = Path(tmp) / "cdk.out"
        command = synth_command(cdk, settings, outdir)
        cpu_before = children_cpu()
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=cwd, env=dict(env), capture_output=True, text=True)
        wall = time.perf_counter() - start
        cpu = children_cpu() - cpu_before
        if proc.returncode != 0:
            raise SynthError(
                f"`{shlex.join(command)}` in {cwd} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
            )
        counters_file = outdir / COUNTERS_FILE
        counters = json.loads(counters_file.read_text())["counters"] if counters_file.exists() else {}
        stacks, resources = assembly_size(outdir)
    return SynthRun(wall, cpu, counters, stacks, resources)


def tool_output(command: Sequence[str], env: Mapping[str, str], cwd: Path) -> str:
    try:
        proc = subprocess.run(list(command), env=dict(env), cwd=cwd, capture_output=True, text=True)
    except OSError as error:
        return f"unavailable ({error})"
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else "unavailable"


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def machine_info(root: Path, cdk: Path, env: Mapping[str, str]) -> dict[str, str]:
    versions = (
        "import importlib.metadata as m; "
        "print(', '.join(f'{p} {m.version(p)}' for p in ('aws-cdk-lib', 'constructs', 'cdk-nag', 'jsii')))"
    )
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": str(nproc),
        "CPU": cpu_model(),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": tool_output(["python", "--version"], env, root).removeprefix("Python "),
        "Node": tool_output(["node", "--version"], env, root),
        "CDK CLI": tool_output([str(cdk), "--version"], env, root),
        "Python packages": tool_output(["python", "-c", versions], env, root),
    }


def source_digest(root: Path) -> str:
    """SHA-256 (first 12 hex digits) of the app's sources, to tell which code a recorded run measured."""
    digest = hashlib.sha256()
    files = [root / name for name in APP_SOURCE_FILES]
    for folder in APP_SOURCE_DIRS:
        files += sorted(p for p in (root / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def fmt(seconds: float) -> str:
    return f"{seconds:.2f}"


def markdown_table(full: Series, floor: Series) -> str:
    rows = [
        "| app | stacks | resources | runs | median (s) | min (s) | max (s) | median CPU (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in (full, floor):
        rows.append(
            f"| {s.label} | {s.stacks} | {s.resources} | {len(s.wall)} | {fmt(s.median)} "
            f"| {fmt(min(s.wall))} | {fmt(max(s.wall))} | {fmt(s.cpu_median)} |"
        )
    return "\n".join(rows)


def breakdown_table(full: Series, floor: Series) -> str:
    rows = [
        "| median of aws-cdk-lib's phase timers (s) | full app | floor | full - floor |",
        "|---|---:|---:|---:|",
    ]

    def row(label: str, a: float, b: float) -> str:
        return f"| {label} | {fmt(a)} | {fmt(b)} | {a - b:+.2f} |"

    for label, name in PHASES:
        rows.append(row(label, full.counter_median(name), floor.counter_median(name)))

    def outside(s: Series) -> float:
        phases = ("phase:Load", "phase:Construction", "phase:Synthesis")
        return statistics.median(
            w - sum(c.get(p, 0.0) for p in phases) / 1000 for w, c in zip(s.wall, s.counters, strict=True)
        )

    rows.append(row(OUTSIDE_LABEL, outside(full), outside(floor)))
    return "\n".join(rows)


def summary_lines(full: Series, floor: Series) -> list[str]:
    ratio = full.median / floor.median
    cpu_ratio = full.cpu_median / floor.cpu_median if floor.cpu_median else float("nan")
    verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
    return [
        f"Ratio of medians (full / floor): **{ratio:.2f}x** "
        f"(+{fmt(full.median - floor.median)} s over the floor); goal <= {GOAL_RATIO}x: **{verdict}**.",
        f"Ratio of median CPU times: {cpu_ratio:.2f}x.",
        "Runs in order (s): full "
        + ", ".join(fmt(t) for t in full.wall)
        + "; floor "
        + ", ".join(fmt(t) for t in floor.wall)
        + ".",
    ]


def readme_block(
    full: Series,
    floor: Series,
    *,
    settings: Settings,
    info: Mapping[str, str],
    started: dt.datetime,
    load: tuple[tuple[float, ...], tuple[float, ...]],
) -> str:
    command = shlex.join(["python", "bench/synth_bench.py", *settings.argv()])
    env_note = ", ".join(f"`{k}={v}`" for k, v in settings.env)
    lines = [
        BLOCK_BEGIN.format(key=settings.key),
        f"### Stage `{settings.stage}`" + (f", both apps with {env_note}" if env_note else ""),
        "",
        "```",
        command,
        "```",
        "",
        markdown_table(full, floor),
        "",
        *(f"{line}  " for line in summary_lines(full, floor)[:-1]),
        summary_lines(full, floor)[-1],
        "",
    ]
    if settings.breakdown:
        lines += [breakdown_table(full, floor), ""]
    lines += [
        f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}",
        *(f"- {key}: {value}" for key, value in info.items()),
        "- Load average (1/5/15 min) at start: "
        + " / ".join(f"{x:.2f}" for x in load[0])
        + "; at end: "
        + " / ".join(f"{x:.2f}" for x in load[1]),
        BLOCK_END.format(key=settings.key),
    ]
    return "\n".join(lines)


SECTION_INTRO = f"""{SECTION_TITLE}

Wall time of `cdk synth --quiet` of the full app against the floor: `bench/floor_app`, an app with one
empty stack and no cdk-nag, synthesized by the same pinned CLI (`node_modules/.bin/cdk`), the same venv
Python, jsii runtime and package cache, the same `scripts/env.sh` environment, the same command line and the
same feature-flag context (`bench/floor_app/cdk.json` is `cdk.json` minus the stages; the script refuses to
run if they drift, `--sync-floor` rewrites it). One untimed warm-up of each, then N runs of each,
alternating, each into a fresh temporary `-o` directory. Goal: full synth <= {GOAL_RATIO}x the floor (ratio
of medians). Seconds are only comparable within one run (the machine may be shared): compare ratios.

Each block below is written by `python bench/synth_bench.py --write` for its stage and `--env` settings
(re-running replaces only that block); text outside the blocks is kept.
"""


def replace_block(text: str, key: str, block: str) -> str:
    """``text`` with this configuration's block of the ``## Synth`` section replaced by ``block`` (or added).

    Everything else of the file, including hand-written text inside the section, is kept.
    """
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION_TITLE), None)
    if start is None:
        prefix = text.rstrip("\n")
        return (prefix + "\n\n" if prefix else "") + SECTION_INTRO + "\n" + block + "\n"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    section = "".join(lines[start:end])
    pattern = re.compile(
        re.escape(BLOCK_BEGIN.format(key=key)) + r".*?" + re.escape(BLOCK_END.format(key=key)), re.DOTALL
    )
    if pattern.search(section):
        section = pattern.sub(lambda _: block, section, count=1)
    else:
        ends = [m.end() for m in re.finditer(r"<!-- synth-bench:end [^>]*-->", section)]
        cut = ends[-1] if ends else len(section.rstrip("\n"))
        section = section[:cut].rstrip("\n") + "\n\n" + block + section[cut:]
    section = section.rstrip("\n") + "\n"
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + tail if tail else "")


def write_readme(path: Path, key: str, block: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    new = replace_block(text, key, block)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new)
    tmp.replace(path)


def parse_env(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise SystemExit(f"error: --env: got {item!r}; allowed: KEY=VALUE")
        pairs.append((key, value))
    return tuple(pairs)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--stage", default="dev", help="stage of the full app (default: dev)")
    parser.add_argument("-n", "--runs", type=int, default=5, help="timed runs of each app (default: 5)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set an environment variable for both apps (repeatable), e.g. CDK_VALIDATION=false",
    )
    parser.add_argument(
        "--breakdown", action="store_true", help="also report aws-cdk-lib's phase timers of both apps"
    )
    parser.add_argument(
        "--write", action="store_true", help=f"update this run's block of the '{SECTION_TITLE}' section"
    )
    parser.add_argument(
        "--sync-floor", action="store_true", help="rewrite bench/floor_app/cdk.json from cdk.json first"
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=DEFAULT_ROOT,
        help="repository root of the app to measure (default: this script's repository)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs: allowed: 1 or more")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = Settings(args.stage, args.runs, parse_env(args.env), args.breakdown)
    root: Path = args.root.resolve()
    floor_dir = root / "bench" / FLOOR_DIR_NAME
    cdk = root / "node_modules" / ".bin" / "cdk"
    if not cdk.exists():
        print(f"error: {cdk} not found; run `bash scripts/bootstrap.sh dev` first", file=sys.stderr)
        return 1
    check_floor(root, floor_dir, args.sync_floor)
    env = bench_env(root, dict(settings.env))
    started = dt.datetime.now(dt.UTC)
    load_start = os.getloadavg()
    full = Series(f"full app (stage {settings.stage})")
    floor = Series("floor (one empty stack)")
    apps = ((full, root), (floor, floor_dir))
    try:
        for series, cwd in apps:
            print(f"warm-up: {series.label} ...")
            timed_synth(cdk, settings, cwd, env)
        for i in range(settings.runs):
            for series, cwd in apps:
                run = timed_synth(cdk, settings, cwd, env)
                series.wall.append(run.wall)
                series.cpu.append(run.cpu)
                series.counters.append(run.counters)
                series.stacks, series.resources = run.stacks, run.resources
                print(
                    f"run {i + 1}/{settings.runs}: {series.label}: {fmt(run.wall)} s (CPU {fmt(run.cpu)} s)"
                )
    except SynthError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    load_end = os.getloadavg()
    info = {
        "App sources (sha256 of app.py, cdk.json, stacks/, constructs/ml_platform/, training_code/)": (
            source_digest(root)
        ),
        **machine_info(root, cdk, env),
    }
    print()
    print(markdown_table(full, floor))
    print()
    print("\n".join(summary_lines(full, floor)))
    if settings.breakdown:
        print()
        print(breakdown_table(full, floor))
    if args.write:
        block = readme_block(
            full, floor, settings=settings, info=info, started=started, load=(load_start, load_end)
        )
        readme = BENCH_DIR / README_NAME
        write_readme(readme, settings.key, block)
        print(f"\nwrote the '{settings.key}' block of the '{SECTION_TITLE}' section of {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
