"""Kill rate per package from a finished mutmut run: `python -m tests.mutation.summary [mutants/]`.

mutmut (`tox -e mutation`) leaves one `<module>.py.meta` file per mutated module under mutants/, mapping each
mutant ("refbroker.core.router.x_route__mutmut_3") to the exit code of the tests run against it. This prints,
per package (refbroker.core, refbroker.protocol) and in total, how many mutants the tests killed (a test
failed), how many survived, timed out or had no test, and the kill rate killed / (killed + survived +
timeout): a mutant that hangs the tests counts as caught only when mutmut says it timed out, so timeouts are
listed apart. `--survivors` lists the surviving mutants (`mutmut show NAME` prints each diff).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

#: mutmut's exit codes (mutmut/stats.py) folded into the groups reported here
_STATUS = {1: "killed", 3: "killed", 37: "killed", 0: "survived", 36: "timeout", 24: "timeout", -24: "timeout",
           152: "timeout", 255: "timeout", 5: "no tests", 33: "no tests", 34: "skipped", None: "not checked"}


def package_of(mutant: str) -> str:
    """"refbroker.core.router.x_route__mutmut_3" -> "refbroker.core"."""
    parts = mutant.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0]


def collect(mutants_dir: Path) -> dict[str, dict[str, str]]:
    """{package: {mutant: status}} from the .meta files."""
    result: dict[str, dict[str, str]] = defaultdict(dict)
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        data = json.loads(meta.read_text(encoding="utf-8"))
        for mutant, code in data.get("exit_code_by_key", {}).items():
            result[package_of(mutant)][mutant] = _STATUS.get(code, "suspicious")
    return result


def rate(counts: Counter) -> float | None:
    judged = counts["killed"] + counts["survived"] + counts["timeout"]
    return None if not judged else 100.0 * (counts["killed"] + counts["timeout"]) / judged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation.summary", description=__doc__.splitlines()[0])
    parser.add_argument("mutants", nargs="?", default="mutants", help="mutmut's mutants/ directory (default: mutants)")
    parser.add_argument("--survivors", action="store_true", help="list the surviving mutants")
    args = parser.parse_args(argv)
    directory = Path(args.mutants)
    if not directory.is_dir():
        print(f"error: {directory} does not exist; run `tox -e mutation` (mutmut run) first", file=sys.stderr)
        return 2
    packages = collect(directory)
    total: Counter = Counter()
    print(f"{'package':<22}{'mutants':>8}{'killed':>8}{'timeout':>8}{'survived':>9}{'no tests':>9}{'kill rate':>10}")
    for package, mutants in sorted(packages.items()):
        counts = Counter(mutants.values())
        total += counts
        shown = rate(counts)
        print(f"{package:<22}{len(mutants):>8}{counts['killed']:>8}{counts['timeout']:>8}{counts['survived']:>9}"
              f"{counts['no tests']:>9}{'-' if shown is None else f'{shown:.1f} %':>10}")
    shown = rate(total)
    print(f"{'total':<22}{sum(total.values()):>8}{total['killed']:>8}{total['timeout']:>8}{total['survived']:>9}"
          f"{total['no tests']:>9}{'-' if shown is None else f'{shown:.1f} %':>10}")
    if args.survivors:
        for package, mutants in sorted(packages.items()):
            for mutant, status in sorted(mutants.items()):
                if status == "survived":
                    print(mutant)
    return 0


if __name__ == "__main__":
    sys.exit(main())
