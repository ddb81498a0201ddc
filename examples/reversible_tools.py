"""Reversible tools: a rollback that also undoes what the agent did.

1. An order agent places orders, charges a card and emails a receipt (a fake shop kept in
   memory). Each tool has an undo handler registered on the ``SessionManager``: cancel the
   order (reversible), refund the charge (compensable); the email is irreversible.
2. ``plan_rollback`` lists the calls made after the restore point, newest first;
   ``rollback(..., undo_effects=True)`` runs their handlers with the calls' real results
   and records each undo, so a second rollback undoes nothing twice.
3. A file-editing agent uses the built-in file tools; its rollback puts every byte back.

Runs offline: the chat model is a deterministic fake that calls real tools.
The database goes to ``$AGENTGIT_EXAMPLES_DIR/reversible_tools.db``, else a temporary
directory (``$AGENTGIT_DB`` overrides it).

    python examples/reversible_tools.py
"""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from langgraph_agentgit import AgentGitSaver, EffectsUndoneWarning, SessionManager
from langgraph_agentgit.agents import FakeToolCallingModel, create_agent_graph
from langgraph_agentgit.effects import Effect
from langgraph_agentgit.effects.files import file_tools, file_undo_handlers


def database_path(name: str) -> str:
    """``$AGENTGIT_DB`` (a file, or a ``postgresql://`` URL with the ``postgres`` extra),
    else ``$AGENTGIT_EXAMPLES_DIR/name``, else ``name`` in a new temporary directory."""
    if os.environ.get("AGENTGIT_DB"):
        return os.environ["AGENTGIT_DB"]
    return str(Path(work_dir()) / name)


@functools.cache
def work_dir() -> str:
    return os.environ.get("AGENTGIT_EXAMPLES_DIR") or tempfile.mkdtemp(prefix="agentgit-")


# --- a shop with side effects ------------------------------------------------------------

ORDERS: dict[str, dict[str, Any]] = {}
PAYMENTS: dict[str, dict[str, Any]] = {}
OUTBOX: list[str] = []


@tool(response_format="content_and_artifact")
def create_order(item: str, price: float) -> tuple[str, dict[str, str]]:
    """Order an item."""
    order_id = f"O-{len(ORDERS) + 1}"
    ORDERS[order_id] = {"item": item, "price": price, "status": "placed"}
    return f"order {order_id}: {item} at ${price:.2f}", {"order_id": order_id}


@tool(response_format="content_and_artifact")
def charge_card(amount: float) -> tuple[str, dict[str, str]]:
    """Charge the customer's card."""
    payment_id = f"P-{len(PAYMENTS) + 1}"
    PAYMENTS[payment_id] = {"amount": amount, "status": "charged"}
    return f"charged ${amount:.2f} ({payment_id})", {"payment_id": payment_id}


@tool
def send_receipt(email: str) -> str:
    """Email the receipt."""
    OUTBOX.append(email)
    return f"receipt sent to {email}"


def cancel_order(effect: Effect) -> None:
    # The real result: the artifact the tool returned, not a placeholder.
    ORDERS[effect.artifact["order_id"]]["status"] = "cancelled"


def refund(effect: Effect) -> None:
    PAYMENTS[effect.artifact["payment_id"]]["status"] = "refunded"


def call(name: str, call_id: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def shop_line() -> str:
    orders = ", ".join(f"{k} {v['item']} {v['status']}" for k, v in ORDERS.items())
    payments = ", ".join(f"{k} ${v['amount']:.2f} {v['status']}" for k, v in PAYMENTS.items())
    return f"orders: {orders}; payments: {payments}; emails sent: {len(OUTBOX)}"


def orders_demo(saver: AgentGitSaver) -> None:
    # The model's replies, in order (the fake model picks the reply by how many AI
    # messages the conversation already has).
    model = FakeToolCallingModel(
        script=[
            AIMessage("", tool_calls=[call("create_order", "c1", item="keyboard", price=89.5)]),
            "Your keyboard is ordered.",
            AIMessage(
                "",
                tool_calls=[
                    call("create_order", "c2", item="monitor", price=300.0),
                    call("charge_card", "c3", amount=389.5),
                ],
            ),
            "Monitor ordered and $389.50 charged.",
            AIMessage("", tool_calls=[call("send_receipt", "c4", email="ada@example.com")]),
            "Receipt sent.",
        ]
    )
    graph = create_agent_graph(
        checkpointer=saver, model=model, tools=[create_order, charge_card, send_receipt]
    )
    sessions = SessionManager(
        saver,
        undo={
            "create_order": cancel_order,
            "charge_card": (refund, "compensable"),
            "send_receipt": (None, "irreversible"),
        },
    )
    s = sessions.create_session(user_id="ada", name="orders")
    config = sessions.config(s.id)
    graph.invoke({"messages": [("user", "I need a keyboard.")]}, config)
    sessions.tag(s.id, graph.get_state(config), "before-monitor")
    graph.invoke({"messages": [("user", "Add a monitor and pay for both.")]}, config)
    graph.invoke({"messages": [("user", "Email me the receipt.")]}, config)
    print("== the shop after three turns")
    print("  " + shop_line())

    plan = sessions.plan_rollback(s.id, "before-monitor")
    print(f"== plan: {len(plan.effects)} effects after 'before-monitor', newest first")
    for planned in plan.effects:
        effect = planned.effect
        print(f"  {planned.status:<12} {effect.tool_name}({effect.args}) -> {effect.result}")

    result = sessions.rollback(s.id, "before-monitor", undo_effects=True)
    result.raise_for_failures()
    print("== rollback with undo_effects=True")
    for outcome in result.outcomes:
        print(f"  {outcome.status} {outcome.effect.tool_name} {outcome.reason or ''}".rstrip())
    print("  " + shop_line())
    assert ORDERS["O-1"]["status"] == "placed"  # before the restore point: kept
    assert ORDERS["O-2"]["status"] == "cancelled" and PAYMENTS["P-1"]["status"] == "refunded"

    # Back on the old branch (it warns: its effects were undone), a second rollback finds
    # everything already undone.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sessions.checkout(s.id, "main")
    for warning in caught:
        if issubclass(warning.category, EffectsUndoneWarning):
            print(f"checkout main: warning: {warning.message}")
    again = sessions.rollback(s.id, "before-monitor", undo_effects=True)
    print(f"second rollback undid {len(again.undone)} effects")


def files_demo(saver: AgentGitSaver, root: Path) -> None:
    (root / "app.py").write_text('print("hello")\n')
    model = FakeToolCallingModel(
        script=[
            AIMessage("", tool_calls=[call("write_file", "f1", path="NOTES.md", content="v1\n")]),
            "Notes written.",
            AIMessage(
                "",
                tool_calls=[
                    call("edit_file", "f2", path="app.py", old="hello", new="goodbye"),
                    call("delete_file", "f3", path="NOTES.md"),
                ],
            ),
            "Done.",
        ]
    )
    graph = create_agent_graph(checkpointer=saver, model=model, tools=file_tools(root))
    sessions = SessionManager(saver, undo=file_undo_handlers(root))
    s = sessions.create_session(name="files")
    config = sessions.config(s.id)
    graph.invoke({"messages": [("user", "Start the notes.")]}, config)
    sessions.tag(s.id, graph.get_state(config), "notes-started")
    before = {p.name: p.read_bytes() for p in root.iterdir()}
    graph.invoke({"messages": [("user", "Say goodbye and drop the notes.")]}, config)
    print("== files after the edit: " + ", ".join(sorted(p.name for p in root.iterdir())))
    print("  app.py: " + (root / "app.py").read_text().strip())
    result = sessions.rollback(s.id, "notes-started", undo_effects=True)
    result.raise_for_failures()
    after = {p.name: p.read_bytes() for p in root.iterdir()}
    print("== files after the rollback: " + ", ".join(sorted(after)))
    print("  app.py: " + (root / "app.py").read_text().strip())
    assert after == before
    print(f"files restored byte for byte: {after == before}")


def main() -> None:
    path = database_path("reversible_tools.db")
    root = Path(work_dir()) / "workspace"
    root.mkdir(exist_ok=True)
    with AgentGitSaver.from_conn_string(path) as saver:
        orders_demo(saver)
        files_demo(saver, root)
    print(f"database: {path}")


if __name__ == "__main__":
    main()
