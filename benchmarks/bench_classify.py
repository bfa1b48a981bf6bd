"""Precision and recall of the interview classifier on the table of real-style titles.

    .venv/bin/python benchmarks/bench_classify.py [--misses]

The table (tests/data/classify_titles.json) holds invented entries shaped like what applicant-tracking
systems, recruiters and colleagues send, each with whether it is the user's own interview. Also times
the classification of the whole table, repeated, against a floor of the same events run through a
trivial keyword check in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from classify_table import load_rows, outcomes, precision_recall, row_event, table_config  # noqa: E402

from daemon.core.classify import classify_all  # noqa: E402


def main() -> int:
    """Print the confusion counts, precision, recall and F1; with --misses, every wrong row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list the rows the classifier gets wrong")
    parser.add_argument("--repeat", type=int, default=200, help="timing repetitions of the whole table")
    args = parser.parse_args()

    results = outcomes()
    precision, recall, tp, fp, fn, tn = precision_recall(results)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    print(f"rows {len(results)}: {tp + fn} interviews, {fp + tn} not")
    print(f"true positives {tp}, false positives {fp}, false negatives {fn}, true negatives {tn}")
    print(f"precision {precision:.3f}  recall {recall:.3f}  F1 {f1:.3f}")
    if args.misses:
        for r in results:
            if not r.right:
                kind = "missed" if r.expected else "false alarm"
                print(f"  {kind:<11} {r.score:+5.1f}  {r.row['t']}")

    config = table_config()
    rows = load_rows()
    events = [row_event(row, i) for i, row in enumerate(rows)]
    began = time.perf_counter()
    for _ in range(args.repeat):
        classify_all(events, config)
    spent = time.perf_counter() - began
    began = time.perf_counter()
    for _ in range(args.repeat):
        [("interview" in e.title.lower()) for e in events]
    floor = time.perf_counter() - began
    per_event = spent / (args.repeat * len(events)) * 1e6
    print(f"classify: {per_event:.1f} µs per event; {spent / floor:.0f}× a bare substring check "
          f"({args.repeat} rounds of {len(events)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
