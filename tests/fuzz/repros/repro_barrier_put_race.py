"""A waiting edge's barrier is stored as it is *after* the next step (put captures late).

KNOWN_DIVERGENCES key: "put:late-capture@parallel".
Found by tests/fuzz (parallel graph, ``make fuzz``); flaky by nature: run it a few times.
LangGraph passes ``put``/``aput`` the live channel objects (``copy_checkpoint`` is
shallow) and calls it in the background while the run goes on;
``NamedBarrierValue.checkpoint()`` returns its ``seen`` set itself, and ``update`` adds to
that set in place on the next step. A saver that serializes when ``put`` is called
(InMemorySaver) stores the right set; one that serializes after waiting (a lock, a worker
thread, the connection thread) sometimes stores the set as the next step left it. Then
that checkpoint reads with a full barrier: its ``next`` includes ``join`` (and a replay
from it would run ``join`` early).

Below: new input addressed at a checkpoint where ``join`` is pending (what the fuzzer did),
60 times per saver. ``Slow`` (InMemorySaver that waits 3 ms, then stores) shows the same
race; ``SlowAfter`` (stores at once, then waits 3 ms) does not - so a saver can avoid it by
serializing (or copying) the checkpoint's values on entry to ``put``/``aput``, before any
lock, executor or connection thread. (AsyncSqliteSaver also serializes after its lock.)

Run: .venv/bin/python tests/fuzz/repros/repro_barrier_put_race.py
"""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from langgraph_agentgit import AgentGitSaver, AsyncAgentGitSaver


class S(TypedDict):
    log: Annotated[list[str], operator.add]


def build() -> StateGraph:
    b = StateGraph(S)
    for name in ("a", "b", "c"):
        b.add_node(name, lambda s, name=name: {"log": [name]})
        b.add_edge(START, name)
    b.add_node("join", lambda s: {"log": ["join"]})
    b.add_edge(["a", "b", "c"], "join")
    b.add_edge("join", END)
    return b


class Slow(InMemorySaver):
    async def aput(self, *a: Any, **k: Any) -> Any:
        await asyncio.sleep(0.003)
        return self.put(*a, **k)

    async def aput_writes(self, *a: Any, **k: Any) -> Any:
        await asyncio.sleep(0.003)
        return self.put_writes(*a, **k)


class SlowAfter(InMemorySaver):
    async def aput(self, *a: Any, **k: Any) -> Any:
        stored = self.put(*a, **k)
        await asyncio.sleep(0.003)
        return stored

    async def aput_writes(self, *a: Any, **k: Any) -> Any:
        self.put_writes(*a, **k)
        await asyncio.sleep(0.003)


async def wrong_inputs(saver: Any, tries: int = 60) -> int:
    """How many runs stored an input checkpoint whose next includes "join"."""
    graph = build().compile(checkpointer=saver)
    wrong = 0
    for i in range(tries):
        config = {"configurable": {"thread_id": f"t{i}"}}
        await graph.ainvoke({"log": ["first"]}, config)
        history = [s async for s in graph.aget_state_history(config)]
        join_pending = next(s for s in history if s.next == ("join",))
        await graph.ainvoke({"log": ["again"]}, join_pending.config)
        async for s in graph.aget_state_history(config):
            wrong += s.metadata["source"] == "input" and "join" in s.next
    return wrong


async def main() -> None:
    counts = {
        "InMemorySaver": await wrong_inputs(InMemorySaver()),
        "Slow": await wrong_inputs(Slow()),
        "SlowAfter": await wrong_inputs(SlowAfter()),
    }
    with AgentGitSaver.from_conn_string(":memory:") as ours:
        counts["AgentGitSaver"] = await wrong_inputs(ours)
    async with AsyncAgentGitSaver.from_conn_string(":memory:") as aio:
        counts["AsyncAgentGitSaver"] = await wrong_inputs(aio)
    # Flaky by nature, more often under load; typical:
    # {'InMemorySaver': 0, 'Slow': 52, 'SlowAfter': 0, 'AgentGitSaver': 13, 'AsyncAgentGitSaver': 0}
    print(counts)
    assert counts["AgentGitSaver"] == counts["AsyncAgentGitSaver"] == 0


asyncio.run(main())
