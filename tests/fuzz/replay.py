"""Re-run a failing sequence the fuzzer printed, step by step, with full tracebacks.

Paste Hypothesis' "Failing test case" lines (``state = DifferentialMachine_agent()`` ...)
into a file and run::

    .venv/bin/python tests/fuzz/replay.py steps.txt

Each step is printed before it runs and followed by the comparison (lines calling
``states_and_histories_match`` may be left out); the first failure raises with its cause.
Preconditions are not checked: a sequence recorded under other ``KNOWN_DIVERGENCES`` may
not replay.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

# As under pytest: the fuzz modules, and tests/ (py310.py).
sys.path.insert(0, str(Path(__file__).parent.parent))
sys.path.insert(0, str(Path(__file__).parent))

from fuzz_graphs import SPECS
from fuzz_machine import make_machine


def main(path: str) -> int:
    lines = [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]
    namespace = {f"DifferentialMachine_{name}": make_machine(spec) for name, spec in SPECS.items()}
    machine = None
    try:
        for line in lines:
            if not line.startswith("state") or "states_and_histories_match" in line:
                continue
            print(">>>", line, flush=True)
            exec(line, namespace)
            machine = namespace.get("state")
            if machine is not None:
                machine.states_and_histories_match()
        print("no failure")
        return 0
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        if machine is not None:
            machine.teardown()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
