"""Run the hostile cases and print tried/clean per class, then every unclean case.

    .venv/bin/python tests/hostile/report.py [--all] [-j 2] [--class a] [--id SUBSTRING] [--json FILE]

Without --all only the fast cases run (as in CI).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hostile.cases import CASES  # noqa: E402
from hostile.runner import problems, run_case  # noqa: E402

CLASSES = {"a": "malformed and adversarial specs", "b": "files and sources", "c": "command line",
           "d": "names that shadow generated code", "e": "run-time arrays", "f": "weight files", "g": "rendering"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--all", action="store_true", help="include the slow cases")
    ap.add_argument("-j", type=int, default=2, help="cases at once (at most 2 on a shared machine)")
    ap.add_argument("--class", dest="cls")
    ap.add_argument("--id")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    cases = [c for c in CASES if (args.all or not c.slow) and (not args.cls or c.cls in args.cls)
             and (not args.id or args.id in c.id)]
    t0 = time.monotonic()
    results = {}

    def one(case):
        o = run_case(case)
        return case, o, problems(case, o)

    with ThreadPoolExecutor(max(1, min(args.j, 2))) as pool:
        for case, o, found in pool.map(one, cases):
            results[case.id] = (case, o, found)
            if found:
                print(f"  UNCLEAN {case.id}: {'; '.join(found)[:400]}", file=sys.stderr, flush=True)
    tried, clean = Counter(), Counter()
    for case, _o, found in results.values():
        tried[case.cls] += 1
        clean[case.cls] += not found
    print(f"\n{'class':6} {'tried':>6} {'clean':>6}  ")
    for k in sorted(tried):
        print(f"{k:6} {tried[k]:6} {clean[k]:6}  {CLASSES.get(k, '')}")
    print(f"{'all':6} {sum(tried.values()):6} {sum(clean.values()):6}  ({time.monotonic() - t0:.0f}s)")
    bad = [(c, f) for c, _o, f in results.values() if f]
    if bad:
        print("\nunclean:")
        for c, f in sorted(bad, key=lambda x: x[0].id):
            print(f"  {c.id}: {'; '.join(f)[:300]}")
    if args.json:
        Path(args.json).write_text(json.dumps({cid: {"cls": c.cls, "problems": f, "elapsed": round(o.elapsed, 2),
                                                      "action_s": round(o.action_s, 2),
                                                      "status": o.status, "message": o.message[:2000],
                                                      "stderr": o.stderr[-2000:], "value": str(o.value)[:300]}
                                               for cid, (c, o, f) in results.items()}, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
