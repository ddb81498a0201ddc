"""Nodes that call ``interrupt()`` under ``ainvoke`` on Python 3.10.

LangGraph finds the run's config (which ``interrupt()`` needs) in a context variable. On
Python 3.11+ it runs each node in a task or thread that carries that variable; on 3.10
asyncio cannot hand a task a context, so under ``ainvoke`` a node (sync or async) that
calls ``interrupt()`` fails with "Called get_config outside of a runnable context". The
fix a user applies, as the README says: the node takes ``config: RunnableConfig`` (which
LangGraph passes to any node that asks for it) and makes it the current config while it
runs. :func:`config_context` does that for the test graphs, on every Python, so the same
graphs run everywhere (on 3.11+ the variable already holds that config).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import var_child_runnable_config


def config_context(node: Callable[[Any], Any]) -> Callable[[Any, RunnableConfig], Any]:
    """``node(state)`` as a node ``(state, config)`` that runs with ``config`` current."""
    first = next(iter(inspect.signature(node).parameters.values()))

    def with_config(state: Any, config: RunnableConfig) -> Any:
        token = var_child_runnable_config.set(config)
        try:
            return node(state)
        finally:
            var_child_runnable_config.reset(token)

    # Not functools.wraps: LangGraph must see this signature (with `config`), while the
    # state's annotation still tells it the node's input schema.
    with_config.__name__ = with_config.__qualname__ = node.__name__
    with_config.__annotations__ = {"state": first.annotation, "config": RunnableConfig}
    return with_config
