"""Real compiled graphs for the session tests, and the helpers that drive them.

Four graphs — a tool-calling agent (deterministic fake chat model + LangGraph's prebuilt
``ToolNode``), a plain ``StateGraph`` without messages, a graph that stops on
``interrupt()``, and a graph with a subgraph — each wrapped in a :class:`GraphCase` that
knows what one conversation turn is and how to read a comparable transcript from state.

Every message id is derived from the conversation's content, so runs are reproducible and
two branches that say different things get different ids.
"""

from __future__ import annotations

import hashlib
import operator
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from conftest import sql_rows
from graphs import build_tool_agent
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command, StateSnapshot, interrupt
from py310 import config_context
from typing_extensions import TypedDict

from langgraph_agentgit import AgentGitSaver, AsyncAgentGitSaver, SessionManager

SESSION_TABLES = ("agentgit_sessions", "agentgit_session_threads", "agentgit_tags")
CORE_TABLES = ("agentgit_threads", "agentgit_checkpoints", "agentgit_writes", "agentgit_blobs")


def digest(*parts: Any) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:12]


def _conversation(messages: Sequence[BaseMessage]) -> tuple[str, ...]:
    return tuple(f"{m.type}:{m.content}" for m in messages)


# --- 1. tool-calling agent ------------------------------------------------------------------


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


class FakeToolModel(BaseChatModel):
    """Calls ``get_weather`` when asked about the weather, answers with the tool result,
    and otherwise echoes the last human message. Deterministic, content-derived ids."""

    @property
    def _llm_type(self) -> str:
        return "fake-tool-model"

    def bind_tools(self, tools: Any, **kwargs: Any) -> FakeToolModel:  # type: ignore[override]
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        key = digest(_conversation(messages))
        last = messages[-1]
        if isinstance(last, ToolMessage):
            reply = AIMessage(content=f"the weather is {last.content}", id=f"ai-{key}")
        elif "weather in " in str(last.content):
            city = str(last.content).split("weather in ", 1)[1].strip(" ?")
            reply = AIMessage(
                content="",
                id=f"ai-{key}",
                tool_calls=[{"name": "get_weather", "args": {"city": city}, "id": f"call-{key}"}],
            )
        else:
            reply = AIMessage(content=f"echo: {last.content}", id=f"ai-{key}")
        return ChatResult(generations=[ChatGeneration(message=reply)])


def build_agent() -> StateGraph:
    return build_tool_agent(FakeToolModel(), [get_weather], MessagesState)


# --- 2. plain StateGraph --------------------------------------------------------------------


class CounterState(TypedDict):
    total: Annotated[int, operator.add]
    log: Annotated[list[str], operator.add]


def build_counter() -> StateGraph:
    def record(state: CounterState) -> dict[str, Any]:
        return {"log": [f"record {state['total']}"]}

    def bump(state: CounterState) -> dict[str, Any]:
        return {"total": 1, "log": ["bump"]}

    builder = StateGraph(CounterState)
    builder.add_node("record", record)
    builder.add_node("bump", bump)
    builder.add_edge(START, "record")
    builder.add_edge("record", "bump")
    builder.add_edge("bump", END)
    return builder


# --- 3. a graph with an interrupt -------------------------------------------------------------


def build_approval() -> StateGraph:
    def draft(state: MessagesState) -> dict[str, Any]:
        last = state["messages"][-1]
        text = f"draft for {last.content}"
        return {"messages": [AIMessage(content=text, id=f"draft-{digest(text)}")]}

    @config_context
    def review(state: MessagesState) -> dict[str, Any]:
        verdict = interrupt({"draft": state["messages"][-1].content})
        text = f"review: {verdict}"
        key = digest(_conversation(state["messages"]), text)
        return {"messages": [AIMessage(content=text, id=f"review-{key}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("draft", draft)
    builder.add_node("review", review)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "review")
    builder.add_edge("review", END)
    return builder


# --- 4. a graph with a subgraph --------------------------------------------------------------


def build_nested() -> StateGraph:
    def think(state: MessagesState) -> dict[str, Any]:
        key = digest(_conversation(state["messages"]), "think")
        return {"messages": [AIMessage(content="thinking", id=f"think-{key}")]}

    def answer(state: MessagesState) -> dict[str, Any]:
        human = [m for m in state["messages"] if isinstance(m, HumanMessage)][-1]
        key = digest(_conversation(state["messages"]), "answer")
        return {"messages": [AIMessage(content=f"answer to {human.content}", id=f"ans-{key}")]}

    inner = StateGraph(MessagesState)
    inner.add_node("think", think)
    inner.add_node("answer", answer)
    inner.add_edge(START, "think")
    inner.add_edge("think", "answer")
    inner.add_edge("answer", END)

    def prepare(state: MessagesState) -> dict[str, Any]:
        key = digest(_conversation(state["messages"]), "prepare")
        return {"messages": [AIMessage(content="prepared", id=f"prep-{key}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("prepare", prepare)
    builder.add_node("inner", inner.compile())
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "inner")
    builder.add_edge("inner", END)
    return builder


# --- cases --------------------------------------------------------------------------------


def _messages_transcript(values: dict[str, Any]) -> list[str]:
    return [f"{m.type}: {m.content}" for m in values.get("messages", [])]


def _human(text: str) -> list[Any]:
    return [{"messages": [("user", text)]}]


@dataclass(frozen=True)
class GraphCase:
    """A graph plus what one conversation turn is and how to read its transcript."""

    name: str
    build: Callable[[], StateGraph]
    turn_inputs: Callable[[str], list[Any]]
    transcript: Callable[[dict[str, Any]], list[str]]

    def turn(self, graph: Any, config: Any, text: str) -> None:
        for item in self.turn_inputs(text):
            graph.invoke(item, config)

    async def aturn(self, graph: Any, config: Any, text: str) -> None:
        for item in self.turn_inputs(text):
            await graph.ainvoke(item, config)


AGENT = GraphCase("agent", build_agent, _human, _messages_transcript)
COUNTER = GraphCase(
    "counter",
    build_counter,
    lambda text: [{"total": len(text), "log": [f"in {text}"]}],
    lambda values: [*values.get("log", []), f"total={values.get('total')}"],
)
APPROVAL = GraphCase(
    "approval",
    build_approval,
    lambda text: [{"messages": [("user", text)]}, Command(resume=f"ok {text}")],
    _messages_transcript,
)
NESTED = GraphCase("nested", build_nested, _human, _messages_transcript)
CASES = (AGENT, COUNTER, APPROVAL, NESTED)


# --- driving a graph and a SessionManager, sync or async ------------------------------


def cfg(thread_id: str, checkpoint_id: str | None = None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread_id}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def cid(snapshot: StateSnapshot) -> str:
    return str(snapshot.config["configurable"]["checkpoint_id"])


class Env:
    """One graph, one saver and a SessionManager, driven through the sync or async API."""

    def __init__(self, mode: str, saver: Any, case: GraphCase) -> None:
        self.mode = mode
        self.saver = saver
        self.case = case
        self.mgr = SessionManager(saver)
        self.graph = case.build().compile(checkpointer=saver)
        self.refs = 0

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self.mode == "sync":
            return getattr(self.mgr, method)(*args, **kwargs)
        return await getattr(self.mgr, "a" + method)(*args, **kwargs)

    async def turn(self, config: RunnableConfig, text: str) -> None:
        if self.mode == "sync":
            self.case.turn(self.graph, config, text)
        else:
            await self.case.aturn(self.graph, config, text)

    async def invoke(self, value: Any, config: RunnableConfig) -> None:
        if self.mode == "sync":
            self.graph.invoke(value, config)
        else:
            await self.graph.ainvoke(value, config)

    async def state(self, config: RunnableConfig) -> StateSnapshot:
        if self.mode == "sync":
            return self.graph.get_state(config)
        return await self.graph.aget_state(config)

    async def history(self, config: RunnableConfig) -> list[StateSnapshot]:
        if self.mode == "sync":
            return list(self.graph.get_state_history(config))
        return [s async for s in self.graph.aget_state_history(config)]

    async def transcript(self, config: RunnableConfig) -> list[str]:
        return self.case.transcript((await self.state(config)).values)

    async def reference(self, turns: list[str]) -> list[str]:
        """The transcript of ``turns`` run from scratch on a new plain thread."""
        self.refs += 1
        config = cfg(f"reference-{self.refs}-{uuid.uuid4()}")
        for text in turns:
            await self.turn(config, text)
        return await self.transcript(config)


@asynccontextmanager
async def open_env(mode: str, path: str, case: GraphCase) -> AsyncIterator[Env]:
    if mode == "sync":
        with AgentGitSaver.from_conn_string(path) as saver:
            yield Env(mode, saver, case)
    else:
        async with AsyncAgentGitSaver.from_conn_string(path) as asaver:
            yield Env(mode, asaver, case)


# --- database views ---------------------------------------------------------------------------


def dump_tables(path: str, tables: Sequence[str] = CORE_TABLES + SESSION_TABLES) -> dict[str, Any]:
    """Every row of every table, sorted, read through a separate connection (a SQLite
    file or a Postgres URL)."""
    return {t: sorted(sql_rows(path, f"SELECT * FROM {t}"), key=repr) for t in tables}


def row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {
        t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in CORE_TABLES + SESSION_TABLES
    }


# --- a process worker (multiprocessing spawn needs it importable) ---------------------------


def process_worker(path: str, worker: int, sessions: int, turns: int, rollbacks: int) -> None:
    """Create sessions in ``path``, run the counter graph on each, roll back a few times
    and run again on every branch."""
    with AgentGitSaver.from_conn_string(path) as saver:
        graph = build_counter().compile(checkpointer=saver)
        mgr = SessionManager(saver)
        for n in range(sessions):
            s = mgr.create_session(user_id=f"worker-{worker}", name=f"w{worker}-s{n}")
            for t in range(turns):
                COUNTER.turn(graph, mgr.config(s.id), f"t{t}")
            for _ in range(rollbacks):
                history = list(graph.get_state_history(mgr.config(s.id)))
                mgr.rollback(s.id, history[len(history) // 2])
                COUNTER.turn(graph, mgr.config(s.id), "again")
