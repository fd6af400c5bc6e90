"""Replay many captures against one running broker and gather the differences (used by `replay` and
by the corpus commands).

Each file is one conversation (a conformance test's sessions, say): its sessions are replayed together,
the files one after the other, against the same broker, in the order given.

    replay_files([(path, capture), ...], (host, port), pace=..., strict=...) -> ReplayOutcome
    outcome.text()        the readable report: the rules, then a diff per session that differs
    outcome.kind_counts() differences by kind
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .diff import RULES, SessionDiff, diff_sessions, kind_counts
from .pcapng import write_pcapng
from .reader import Capture
from .replay import replay_sessions

__all__ = ["FileOutcome", "ReplayOutcome", "replay_files", "write_json"]


@dataclass
class FileOutcome:
    path: str
    sessions: list[SessionDiff]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def equal(self) -> bool:
        return all(diff.equal for diff in self.sessions)


@dataclass
class ReplayOutcome:
    target: str
    pace: str
    strict: bool
    files: list[FileOutcome] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return all(f.equal for f in self.files)

    def kind_counts(self) -> Counter:
        return kind_counts([diff for f in self.files for diff in f.sessions])

    def differing_files(self) -> list[FileOutcome]:
        return [f for f in self.files if not f.equal]

    def text(self) -> str:
        out = [f"replay against {self.target}, pace {self.pace}" + (", strict: bytes compared" if self.strict else "")]
        if self.strict:
            out.append("normalisation: none (--strict): the broker's packets are compared byte for byte, in order")
        else:
            out.append("normalisation rules (what may legitimately differ between two runs):")
            out += [f"  - {name}: {text}" for name, text in RULES]
        for outcome in self.files:
            if outcome.equal:
                continue
            out.append("")
            out.append(f"{outcome.path}:")
            for diff in outcome.sessions:
                if not diff.equal:
                    out.append(f" session {diff.number}: {len(diff.differences)} difference(s)")
                    out += diff.lines()
            out += [f" note: {note}" for note in outcome.notes]
        sessions = sum(len(f.sessions) for f in self.files)
        differing = sum(1 for f in self.files for d in f.sessions if not d.equal)
        out.append("")
        out.append(f"{len(self.files)} capture(s), {sessions} session(s): {differing} session(s) in "
                   f"{len(self.differing_files())} capture(s) differ")
        for kind, count in sorted(self.kind_counts().items(), key=lambda item: (-item[1], item[0])):
            out.append(f"  {count:5d}  {kind}")
        return "\n".join(out)

    def to_json(self) -> dict:
        return {
            "target": self.target, "pace": self.pace, "strict": self.strict,
            "rules": [] if self.strict else [{"name": n, "text": t} for n, t in RULES],
            "captures": len(self.files),
            "differing_captures": len(self.differing_files()),
            "kinds": dict(self.kind_counts()),
            "files": [{"path": f.path, "equal": f.equal, "notes": f.notes,
                       "sessions": [{"number": d.number, "compared": d.compared,
                                     "differences": [vars(x) for x in d.differences]} for d in f.sessions]}
                      for f in self.files],
        }


def write_json(outcome: ReplayOutcome, path: str | os.PathLike) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(outcome.to_json(), indent=1) + "\n", encoding="utf-8")


def replay_files(captures: list[tuple[Path, Capture]], address: tuple[str, int], *, pace: str = "fast",
                 strict: bool = False, answer_timeout: float = 1.0, output: str | None = None, progress=None,
                 target_name: str = "") -> ReplayOutcome:
    outcome = ReplayOutcome(target_name or f"{address[0]}:{address[1]}", pace, strict)
    for number, (path, capture) in enumerate(captures, 1):
        if not capture.sessions:
            outcome.files.append(FileOutcome(str(path), [], ["no MQTT session in this capture"]))
            continue
        result = replay_sessions(capture.sessions, address, pace=pace, strict=strict, answer_timeout=answer_timeout)
        diffs = [diff_sessions(a, b, strict=strict) for a, b in zip(result.recorded, result.replayed)]
        file_outcome = FileOutcome(str(path), diffs, result.notes, result.seconds)
        outcome.files.append(file_outcome)
        if output:
            name = Path(path).name.removesuffix(".gz")
            write_pcapng(result.replayed, Path(output) / name)
        if progress:
            differing = sum(1 for d in diffs if not d.equal)
            progress(f"[{number}/{len(captures)}] {Path(path).name}: "
                     + ("same" if not differing else f"{differing} of {len(diffs)} session(s) differ"))
    return outcome
