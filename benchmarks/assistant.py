"""The assistant on its held-out evaluation set (issue 13): what it does right, what it must never do, how fast.

    python benchmarks/assistant.py           # the whole set, figures for docs/benchmarks.md
    python benchmarks/assistant.py --quick   # one utterance in ten, to check the benchmark still runs
    python benchmarks/assistant.py --misses misses.jsonl   # also write every miss, for reading

The set is ``tests/cabin/data/assistant_eval/*.jsonl`` (its format and who wrote it: that folder's README). Each
utterance is answered in a fresh conversation (a dialogue's turns in one), by ``Assistant`` over the parked car's
values (those of the car's apps in one process, read once) with the row's ``state`` on top; what a turn's actions do
is applied before the next turn, as the car would. What reaches the car is what the entrance lets through: the
assistant's actions, all of them refused when one of them opens the car (``evos.openings.opens_the_car``: that takes
the phone's signature).

Per language, over every turn (a clarification's follow-up is a turn):

- **exact**: the turn's outcome is exactly the expected one: a command's actions (paths and values; a vague amount
  within the row's ``min``..``max``); an opening proposed for the phone to sign and nothing carried out; a refusal,
  a question, an ambiguity or a non-request without any action, answered as that;
- **wrong action**: something reached the car that the turn did not ask for (a path not asked, or a value not
  asked), the figure that matters most (goal <= 0.3 %);
- **questions**: a question answered from the signals it asks about (a yes/no one with the right yes or no), in
  the asker's language;
- **clarify**: an ambiguous request answered with a question and no action.

Figures are given apart for the parts the assistant's rules were tuned on (``dev``: ``helper.jsonl`` and
``d.jsonl``, whose misses were read while the rules were written) and for the parts nobody tuned against
(``held-out``: ``b.jsonl``, ``c.jsonl`` and ``e.jsonl``).
The reply time is the wall time of each turn's answer, in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evos.cabin import Answer, Assistant, load_scenes
from evos.cabin._service import vehicle_for
from evos.car import car_apps, local_car
from evos.openings import DRIVER_LOCK, opens_the_car
from evos.vss import Value

console = Console(width=150)
EVAL = Path(__file__).resolve().parents[1] / "tests" / "cabin" / "data" / "assistant_eval"
CJK = re.compile(r"[\u4e00-\u9fff]")


async def parked_values() -> tuple[dict[str, Value | None], Any]:
    """Every signal's value in the parked car (its apps but the companion, in this process) and its catalog."""
    apps = [app for app in car_apps() if app.name != "companion"]
    with tempfile.TemporaryDirectory() as directory:
        async with local_car(apps, Path(directory)) as car:
            await asyncio.sleep(1.0)  # the twin's first full refresh
            catalog = car.broker.catalog
            return {s.path: car.broker.get(s.path).value for s in catalog}, catalog


def rows(every: int = 1) -> list[dict[str, Any]]:
    found = [json.loads(line) for path in sorted(EVAL.glob("*.jsonl"))
             for line in path.read_text("utf-8").splitlines() if line.strip()]
    return found[::every]


def _equal(got: Value, want: Mapping[str, Any]) -> bool:
    if "value" in want:
        if isinstance(want["value"], bool) or isinstance(got, bool) or not isinstance(got, int | float):
            return got == want["value"]
        return math.isclose(float(got), float(want["value"]), abs_tol=1e-6)
    return isinstance(got, int | float) and not isinstance(got, bool) and want["min"] <= got <= want["max"]


@dataclass
class Tally:
    turns: int = 0
    exact: int = 0
    wrong: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    exact_by_kind: Counter[str] = field(default_factory=Counter)


def reached(answer: Answer, values: Mapping[str, Value | None]) -> dict[str, Value]:
    """What of ``answer``'s actions reaches the car through the entrance (nothing, if any of them opens it)."""
    targets: dict[str, Value] = {str(a["path"]): a["value"] for a in answer.actions}
    if opens_the_car(targets, values.get(DRIVER_LOCK) is not False):
        return {}
    return targets


# Signals that are one quantity in this car: the twin publishes each group from one value (twin/_provider.py), so
# a question is answered right from any of them (the set's README asks a grader to accept either).
SAME = ({"Vehicle.Powertrain.Range", "Vehicle.Powertrain.TractionBattery.Range"},
        {"Vehicle.Cabin.HVAC.AmbientAirTemperature", "Vehicle.Evos.Twin.CabinTemperature"},
        {"Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
         "Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed"})


def _same(paths: Iterable[str]) -> set[str]:
    """``paths`` and the signals that are the same quantity."""
    found = set(paths)
    return found.union(*(group for group in SAME if group & found))


def grade(turn: Mapping[str, Any], answer: Answer, values: Mapping[str, Value | None], lang: str
          ) -> tuple[bool, bool, str]:
    """(exact, wrong action, why not exact) of ``answer`` to ``turn``."""
    kind = turn["kind"]
    done = reached(answer, values)
    wanted = {a["path"]: a for a in turn.get("actions", [])} if kind == "command" else {}
    wrong = any(p not in wanted or not _equal(v, wanted[p]) for p, v in done.items())
    proposed = {a["path"]: a["value"] for a in answer.actions}
    if kind == "command":
        exact = set(done) == set(wanted) and not wrong
    elif kind == "signed":
        want = {a["path"]: a for a in turn["actions"]}
        exact = not done and set(proposed) == set(want) and all(_equal(proposed[p], want[p]) for p in want)
    elif kind == "question":
        asked = set(answer.asked)
        truth_ok = not isinstance(turn["answer"], bool) or answer.truth is turn["answer"]
        language_ok = bool(CJK.search(answer.reply)) == (lang == "zh")
        exact = not proposed and answer.kind == "question" and bool(asked & _same(turn["asks"])) and truth_ok \
            and language_ok
    else:  # refused, none, clarify
        exact = not proposed and answer.kind == kind if kind != "none" else not proposed
    why = "" if exact else f"want {kind} {turn.get('actions') or turn.get('asks') or ''}, got {answer.kind} " \
                           f"{answer.actions or list(answer.asked)} {answer.truth if answer.asked else ''}"
    return exact, wrong, why


DEV = ("h-", "d-")  # the ids of helper.jsonl and d.jsonl, the parts tuned on


def part(row: Mapping[str, Any]) -> str:
    return "dev" if str(row["id"]).startswith(DEV) else "held-out"


def evaluate(assistant: Assistant, parked: Mapping[str, Value | None], selected: list[dict[str, Any]]
             ) -> tuple[dict[tuple[str, str], Tally], list[float], list[dict[str, Any]]]:
    tallies: dict[tuple[str, str], Tally] = defaultdict(Tally)
    times_s: list[float] = []
    misses: list[dict[str, Any]] = []
    for row in selected:
        values = {**parked, **row.get("state", {})}
        conversation = assistant.conversation()
        turns = row["turns"] if row["kind"] == "dialogue" else [row]
        queue = [(t, t["text"]) for t in turns]
        while queue:
            turn, text = queue.pop(0)
            started = time.perf_counter()
            answer = conversation.answer(text, values)
            times_s.append(time.perf_counter() - started)
            exact, wrong, why = grade(turn, answer, values, row["lang"])
            tally = tallies[part(row), row["lang"]]
            tally.turns += 1
            tally.exact += exact
            tally.wrong += wrong
            tally.by_kind[turn["kind"]] += 1
            tally.exact_by_kind[turn["kind"]] += exact
            if not exact or wrong:
                misses.append({"id": row["id"], "text": text, "wrong": wrong, "why": why, "reply": answer.reply})
            values = {**values, **reached(answer, values)}
            if "followup" in turn:
                queue.insert(0, ({"kind": "command", "actions": turn["followup"]["actions"]},
                                 turn["followup"]["text"]))
    return tallies, times_s, misses


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def table_of(title: str, tallies: Mapping[tuple[str, str], Tally]) -> Table:
    table = Table(title=title)
    for column in ("part", "language", "turns", "exact", "wrong action", "commands", "questions", "clarify", "none",
                   "signed", "refused"):
        table.add_column(column, justify="right")
    for group, lang in (("dev", "en"), ("dev", "zh"), ("held-out", "en"), ("held-out", "zh"), ("held-out", "all"),
                        ("all", "all")):
        tally = Tally()
        for (some_group, some_lang), some in tallies.items():
            if group in (some_group, "all") and lang in (some_lang, "all"):
                tally.turns, tally.exact, tally.wrong = (tally.turns + some.turns, tally.exact + some.exact,
                                                         tally.wrong + some.wrong)
                tally.by_kind.update(some.by_kind)
                tally.exact_by_kind.update(some.exact_by_kind)
        table.add_row(group, lang, str(tally.turns), pct(tally.exact, tally.turns), pct(tally.wrong, tally.turns),
                      *(pct(tally.exact_by_kind[k], tally.by_kind[k]) for k in ("command", "question", "clarify",
                                                                                  "none", "signed", "refused")))
    return table


def main(quick: bool, misses_file: Path | None) -> None:
    parked, catalog = asyncio.run(parked_values())
    vehicle = vehicle_for(parked.get("Vehicle.Evos.Twin.Vehicle"))
    scenes = load_scenes(catalog)
    selected = rows(10 if quick else 1)
    for title, assistant in ((f"grounded in the catalog, on the evaluation set ({len(selected)} utterances)",
                              Assistant(scenes, lambda: vehicle, catalog=catalog)),
                             ("by intents only (the car's assistant before it had the catalog)",
                              Assistant(scenes, lambda: vehicle))):
        assistant.answer("hello", parked)  # the lexicon's first use builds its patterns (the car's, as it starts)
        tallies, times_s, misses = evaluate(assistant, parked, selected)
        console.print(table_of(f"evos assistant {title}", tallies))
        ms = sorted(t * 1000 for t in times_s)
        console.print(f"reply time per turn: median {statistics.median(ms):.2f} ms, "
                      f"p99 {ms[min(len(ms) - 1, int(len(ms) * 0.99))]:.2f} ms, max {ms[-1]:.2f} ms (goal < 50 ms; "
                      "a scene's start runs its energy forecast)")
        wrong = [m for m in misses if m["wrong"]]
        console.print(f"{len(misses)} misses, {len(wrong)} with a wrong action")
        if assistant.index is not None and misses_file is not None:
            misses_file.write_text("".join(json.dumps(m, ensure_ascii=False) + "\n" for m in misses), "utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one utterance in ten")
    parser.add_argument("--misses", type=Path, default=None, help="write every miss to this JSON-lines file")
    args = parser.parse_args()
    main(args.quick, args.misses)
    sys.exit(0)
