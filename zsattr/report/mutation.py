"""Mutation score per module, read from a finished `mutmut run` (`make mutation`).

mutmut writes one `mutants/<source path>.meta` JSON per mutated file, whose `exit_code_by_key`
maps each mutant to the exit code of the tests run against it. This module turns those into a
table, one row per module: killed (a test failed, or the tests ran past mutmut's time limit, which
also means the change was noticed), survived (every test passed), no tests (no selected test
reaches the mutated function: counted as survived), and the score killed / checked.

    python -m zsattr.report.mutation [--mutants mutants] [--require 90]

prints the table and the surviving mutants' names (`mutmut show NAME` gives each diff); exits 0,
1 when a module scores below `--require` percent or a mutant was never checked, 2 when there is
no finished run to read.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

# mutmut's exit codes (mutmut/stats.py); any other code is "suspicious" and counted as survived,
# so an odd result never raises the score.
KILLED_CODES = {1, 3}
TIMEOUT_CODES = {24, -24, 152, 255, 36}
SURVIVED_CODES = {0}
NO_TESTS_CODES = {5, 33}
SKIPPED_CODES = {34}


@dataclass
class ModuleScore:
    module: str
    killed: int = 0
    timeout: int = 0
    survived: list[str] = field(default_factory=list)
    no_tests: list[str] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    skipped: int = 0

    @property
    def checked(self) -> int:
        return self.killed + self.timeout + len(self.survived) + len(self.no_tests)

    @property
    def score(self) -> float:
        """Percent of checked mutants the tests noticed; skipped and unchecked ones are out."""
        return 100.0 * (self.killed + self.timeout) / self.checked if self.checked else float("nan")


def module_name(meta_path: Path, mutants_dir: Path) -> str:
    """mutants/zsattr/core/keys.py.meta -> zsattr.core.keys"""
    relative = meta_path.relative_to(mutants_dir).as_posix()
    return relative.removesuffix(".py.meta").replace("/", ".")


def score_module(meta_path: Path, mutants_dir: Path) -> ModuleScore:
    data = json.loads(meta_path.read_text())
    result = ModuleScore(module_name(meta_path, mutants_dir))
    for name, code in sorted(data["exit_code_by_key"].items()):
        if code is None:
            result.not_checked.append(name)
        elif code in KILLED_CODES:
            result.killed += 1
        elif code in TIMEOUT_CODES:
            result.timeout += 1
        elif code in NO_TESTS_CODES:
            result.no_tests.append(name)
        elif code in SKIPPED_CODES:
            result.skipped += 1
        else:  # 0, or a code mutmut calls suspicious
            result.survived.append(name)
    return result


def read_scores(mutants_dir: Path) -> list[ModuleScore]:
    metas = sorted(mutants_dir.rglob("*.py.meta"))
    if not metas:
        raise FileNotFoundError(f"no mutmut results under {mutants_dir}: run `make mutation` first")
    return [score_module(path, mutants_dir) for path in metas]


def format_table(scores: list[ModuleScore]) -> str:
    lines = [f"{'module':<36} {'mutants':>7} {'killed':>7} {'timeout':>7} {'survived':>8} "
             f"{'no tests':>8} {'unchecked':>9} {'score %':>7}"]
    for s in scores:
        lines.append(f"{s.module:<36} {s.checked + len(s.not_checked) + s.skipped:>7} {s.killed:>7} "
                     f"{s.timeout:>7} {len(s.survived):>8} {len(s.no_tests):>8} {len(s.not_checked):>9} "
                     f"{s.score:>7.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"), help="mutmut's output folder")
    parser.add_argument("--require", type=float, default=90.0, help="lowest acceptable score per module, percent")
    args = parser.parse_args(argv)
    try:
        scores = read_scores(args.mutants)
    except FileNotFoundError as error:
        print(f"zsattr.report.mutation: {error}", file=sys.stderr)
        return 2
    print(format_table(scores))
    for s in scores:
        for name in s.survived + s.no_tests:
            print(f"  survived: {name}")
    low = [s.module for s in scores if not s.score >= args.require]
    unchecked = sum(len(s.not_checked) for s in scores)
    if unchecked:
        print(f"{unchecked} mutants were never checked: the run did not finish", file=sys.stderr)
    if low:
        print(f"below {args.require:g} %: {', '.join(low)}", file=sys.stderr)
    return 1 if low or unchecked else 0


if __name__ == "__main__":
    sys.exit(main())
