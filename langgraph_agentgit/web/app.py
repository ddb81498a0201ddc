"""The Starlette application behind ``agentgit serve``: HTML pages and a JSON API over one
open saver, every change through :class:`~langgraph_agentgit.SessionManager`.

Pages: ``/`` (sessions), ``/sessions/{id}`` (the branch timeline), ``…/checkpoints/{id}``
(one checkpoint), ``…/diff?a=…&b=…``; actions (``POST …/actions/{tag|branch|rollback|
checkout}``) ask for confirmation first and are refused on a read-only viewer. The API
under ``/api/`` returns the views layer's shapes (``docs/views-schema.md``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from langgraph_agentgit.errors import (
    AgentGitError,
    CorruptDataError,
    EffectsUndoneWarning,
    ReadOnlyDatabaseError,
)
from langgraph_agentgit.views import build
from langgraph_agentgit.views.svg import NODE_COLOURS, timeline_svg
from langgraph_agentgit.views.text import MIN_ABBREV, abbreviations, message_preview
from langgraph_agentgit.web.security import CSRF_FIELD, CSRF_HEADER, Guard, SecurityMiddleware

if TYPE_CHECKING:
    from langgraph.checkpoint.base import CheckpointTuple

    from langgraph_agentgit.saver_base import AgentGitSaverBase
    from langgraph_agentgit.sessions.manager import SessionManager
    from langgraph_agentgit.sessions.models import ExternalSession
    from langgraph_agentgit.timeline import Timeline

HERE = Path(__file__).parent
ACTIONS = ("tag", "branch", "rollback", "checkout")
#: Hits the search page and ``/api/search`` show, best first.
SEARCH_HITS = 50
#: Sessions on a page of the sessions page and of ``/api/sessions``, most recent first.
SESSIONS_PER_PAGE = 50
#: The largest ``?offset=`` accepted (far past any real database's sessions).
MAX_OFFSET = 10**9


class HTTPProblem(Exception):
    """A request that cannot be served: shown as a page (or JSON under ``/api/``) with
    this status and one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class SessionsPage:
    """One page of the sessions listing: ``rows`` (session, last message preview),
    ``total`` sessions matching the filters, the page's ``offset`` and whether ``more``
    follow."""

    rows: list[tuple[ExternalSession, str]]
    total: int
    offset: int
    more: bool


class Viewer:
    """What the pages read, over one saver: sessions, timelines, checkpoints, diffs."""

    def __init__(self, saver: AgentGitSaverBase, mgr: SessionManager, *, read_only: bool):
        self.saver = saver
        self.mgr = mgr
        self.read_only = read_only

    def session(self, session_id: str) -> ExternalSession:
        found = self.mgr.get_session(session_id)
        if found is None:
            raise HTTPProblem(404, f"no session {session_id!r}")
        return found

    def sessions(
        self, *, user: str | None = None, active: bool = False, text: str = "", offset: int = 0
    ) -> SessionsPage:
        """One page (``SESSIONS_PER_PAGE``) of sessions, most recently active first, with
        the last message of each. Without ``text`` the page is read through the activity
        index (the same cost at 10 or 10,000 sessions); ``text`` (case-insensitive, in
        the id, the name or the user) reads every session's row, and still decodes the
        last message of the page's sessions alone."""
        if not text:
            found = self.mgr.list_sessions(
                user_id=user, active_only=active, limit=SESSIONS_PER_PAGE + 1, offset=offset
            )
            total = self.mgr.count_sessions(user_id=user, active_only=active)
        else:
            matching = [
                s
                for s in self.mgr.list_sessions(user_id=user, active_only=active)
                if any(text in (f or "").lower() for f in (s.id, s.name, s.user_id))
            ]
            total = len(matching)
            found = matching[offset : offset + SESSIONS_PER_PAGE + 1]
        shown = found[:SESSIONS_PER_PAGE]
        return SessionsPage(
            rows=[(s, build.session_preview(self.saver, self.mgr, s.id)) for s in shown],
            total=total,
            offset=offset,
            more=len(found) > SESSIONS_PER_PAGE,
        )

    def timeline(self, session_id: str) -> Timeline:
        self.session(session_id)
        return self.mgr.timeline(session_id)

    def outline(self, session_id: str) -> Timeline:
        """The session's timeline without its heads' states (no ``last_message``,
        ``interrupted`` false): enough to place a checkpoint, and much cheaper (reading
        each head decodes its whole state)."""
        from langgraph_agentgit.sessions import store as ops
        from langgraph_agentgit.timeline import Timeline

        self.session(session_id)
        session, histories, tags = self.saver._read(
            ops.timeline_data, self.saver.store, session_id, False
        )
        return Timeline(session, tuple(histories), tags)

    def owner(self, timeline: Timeline, checkpoint_id: str) -> str | None:
        """The branch that wrote ``checkpoint_id`` (``None``: not in the session)."""
        for history in timeline.branches:
            if any(c.checkpoint_id == checkpoint_id for c in history.checkpoints):
                return history.branch.thread_id
        return None

    def tuple(self, timeline: Timeline, checkpoint_id: str) -> tuple[CheckpointTuple, str | None]:
        """A checkpoint of the session: read in the branch that wrote it, else in any
        branch that inherits it (one left by a deleted thread)."""
        owner = self.owner(timeline, checkpoint_id)
        threads = [owner] if owner else [h.branch.thread_id for h in timeline.branches]
        for thread_id in threads:
            found = self.saver.get_tuple(
                {
                    "configurable": {
                        "thread_id": thread_id,
                        "checkpoint_ns": "",
                        "checkpoint_id": checkpoint_id,
                    }
                }
            )
            if found is not None:
                return found, owner
        raise HTTPProblem(404, f"no checkpoint {checkpoint_id!r} in session {timeline.session.id}")

    def detail(self, timeline: Timeline, checkpoint_id: str) -> dict[str, Any]:
        item, owner = self.tuple(timeline, checkpoint_id)
        parent_id = build.parent_id(item)
        parent = None
        if parent_id is not None:
            try:
                parent, _ = self.tuple(timeline, parent_id)
            except HTTPProblem:
                parent = None
        tags = [name for name, cid in sorted(timeline.tags.items()) if cid == checkpoint_id]
        return build.checkpoint_detail_view(item, parent, thread_id=owner, tags=tags)


def _templates() -> Jinja2Templates:
    # Autoescape everything: names, tags and messages come from the database.
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["preview"] = lambda text, width=80: build.cut(" ".join(str(text).split()), width)
    env.filters["q"] = lambda value: quote(str(value), safe="")
    return Jinja2Templates(env=env)


def create_app(
    saver: AgentGitSaverBase,
    mgr: SessionManager,
    *,
    guard: Guard,
    read_only: bool = False,
    database: str = "",
) -> Starlette:
    """The viewer's ASGI application over an open ``saver`` (sync API; the pages run in
    Starlette's thread pool, the saver serializes its own access).

    ``guard`` holds the access and CSRF tokens and the allowed hosts; ``read_only``
    hides and refuses the actions; ``database`` is shown in the pages' header.

    Nothing is read until a request comes. A request never gets a traceback: an unknown
    session or checkpoint is a 404 page (under ``/api/``, a ``{"kind": "error"}``
    document), an :class:`~langgraph_agentgit.errors.AgentGitError` raised by the
    manager (:class:`SessionNotFoundError`, :class:`CheckpointNotFoundError`,
    :class:`TagExistsError`, :class:`InvalidTagError`, ...), a ``ValueError`` or a
    ``LookupError`` is a 400 with its first line, damaged data
    (:class:`~langgraph_agentgit.errors.CorruptDataError`) a 500; a refused request is 400
    (Host), 401 (access token), 403 (CSRF token, cross-site ``Origin``, read-only), 413 or 415 (a
    form too big, or not URL-encoded).
    """
    viewer = Viewer(saver, mgr, read_only=read_only)
    templates = _templates()

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.update(
            csrf=guard.csrf,
            read_only=read_only,
            database=database,
            node_colours=NODE_COLOURS,
        )
        return templates.TemplateResponse(request, name, context, status_code=status)

    def problem(request: Request, exc: HTTPProblem) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                build.versioned("error", status=exc.status, message=exc.message),
                status_code=exc.status,
            )
        return page(request, "error.html", exc.status, message=exc.message)

    def guarded(endpoint: Any) -> Any:
        async def run(request: Request) -> Response:
            try:
                return await endpoint(request)
            except HTTPProblem as exc:
                return problem(request, exc)
            except CorruptDataError as exc:
                # Damage in the database, not a bad request.
                said = str(exc).splitlines()
                return problem(request, HTTPProblem(500, said[0] if said else "damaged data"))
            except (AgentGitError, ValueError, LookupError) as exc:
                said = str(exc).splitlines()
                return problem(request, HTTPProblem(400, said[0] if said else type(exc).__name__))

        return run

    async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(fn, *args, **kwargs)

    # --- pages ---------------------------------------------------------------------------

    async def sessions_page(request: Request) -> Response:
        params = request.query_params
        user = params.get("user", "")
        active = params.get("active") == "1"
        listed = await call(
            viewer.sessions,
            user=_user_param(user),
            active=active,
            text=params.get("q", "").strip().lower(),
            offset=_offset_param(params),
        )
        # Prefixes unique among the page's sessions, long enough (48 random bits of a
        # UUID) when there are others that a shared one is unlikely (as the CLI's).
        short = abbreviations(
            [s.id for s, _ in listed.rows],
            minimum=13 if listed.total > len(listed.rows) else MIN_ABBREV,
        )

        def at(offset: int) -> str:
            kept = [(k, v) for k, v in params.multi_items() if k != "offset" and v]
            return "/?" + urlencode([*kept, ("offset", str(offset))])

        return page(
            request,
            "sessions.html",
            listing=listed,
            rows=listed.rows,
            short=short,
            q=params.get("q", ""),
            user=user,
            active=active,
            # From past the end, the last page (not a page back from where nothing is).
            newer=(
                at(max(0, min(listed.offset, listed.total) - SESSIONS_PER_PAGE))
                if listed.offset
                else None
            ),
            older=at(listed.offset + len(listed.rows)) if listed.more else None,
        )

    async def session_page(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        show_all = request.query_params.get("all") == "1"
        timeline = await call(viewer.timeline, session_id)
        base = f"/sessions/{quote(session_id, safe='')}"
        svg = timeline_svg(
            timeline,
            collapse=not show_all,
            href=lambda cid: f"{base}/checkpoints/{quote(cid, safe='')}",
        )
        collapsed = 'class="gap"' in svg
        abbrev = abbreviations(
            [c.checkpoint_id for h in timeline.branches for c in h.checkpoints]
            + [h.head.checkpoint_id for h in timeline.branches if h.head]
        )
        threads = abbreviations([h.branch.thread_id for h in timeline.branches])
        labels = {h.branch.thread_id: timeline.label(h) for h in timeline.branches}
        choices = [
            (h.head.checkpoint_id, f"head of {timeline.label(h)}")
            for h in timeline.branches
            if h.head is not None
        ] + [(cid, f"tag {name}") for name, cid in sorted(timeline.tags.items())]
        return page(
            request,
            "session.html",
            timeline=timeline,
            s=timeline.session,
            svg=svg,
            collapsed=collapsed,
            show_all=show_all,
            abbrev=abbrev,
            threads=threads,
            labels=labels,
            choices=choices,
            base=base,
            notice=request.query_params.get("notice", ""),
        )

    async def checkpoint_page(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        checkpoint_id = request.path_params["checkpoint_id"]
        timeline = await call(viewer.outline, session_id)
        detail = await call(viewer.detail, timeline, checkpoint_id)
        labels = {h.branch.thread_id: timeline.label(h) for h in timeline.branches}
        current = timeline.current
        return page(
            request,
            "checkpoint.html",
            s=timeline.session,
            c=detail,
            labels=labels,
            base=f"/sessions/{quote(session_id, safe='')}",
            current_head=current.head.checkpoint_id if current and current.head else None,
            pretty=_pretty,
        )

    async def diff_page(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        a = request.query_params.get("a", "")
        b = request.query_params.get("b", "")
        if not a or not b:
            raise HTTPProblem(400, "a diff needs two checkpoints: ?a=…&b=…")
        session = await call(viewer.session, session_id)
        result = await call(viewer.mgr.diff, a, b, session_id=session.id)
        return page(
            request,
            "diff.html",
            s=session,
            d=result,
            data=build.diff_view(result),
            base=f"/sessions/{quote(session_id, safe='')}",
            preview=message_preview,
            pretty=_pretty,
        )

    async def searched(request: Request) -> tuple[str, dict[str, str], list[Any]]:
        """``?q=`` searched with the filters ``?user=``, ``?session=`` (an id; unknown:
        404) and ``?role=`` (unknown: 400), as ``agentgit search`` takes them."""
        params = request.query_params
        query = params.get("q", "")
        filters = {k: params.get(k, "").strip() for k in ("user", "session", "role")}
        user = _user_param(filters["user"])
        session_id = None
        if filters["session"]:
            session_id = (await call(viewer.session, filters["session"])).id
        if not query.strip():
            return query, filters, []
        hits = await call(
            viewer.mgr.search,
            query,
            user_id=user,
            session_id=session_id,
            role=filters["role"] or None,
            limit=SEARCH_HITS,
        )
        return query, filters, hits

    async def search_page(request: Request) -> Response:
        query, filters, hits = await searched(request)
        names: dict[str, str] = {}
        for hit in hits:
            if hit.session_id is not None and hit.session_id not in names:
                found = await call(viewer.mgr.get_session, hit.session_id)
                names[hit.session_id] = found.name if found is not None else ""
        return page(
            request,
            "search.html",
            q=query,
            filters=filters,
            hits=hits,
            names=names,
            marked=marked_snippet,
        )

    # --- actions -------------------------------------------------------------------------

    async def action(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        kind = request.path_params["action"]
        if kind not in ACTIONS:
            raise HTTPProblem(404, f"no action {kind!r}")
        if read_only:
            raise HTTPProblem(403, "this viewer is read-only (agentgit serve --read-only)")
        form = await _form(request)
        given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
        if not guard.csrf_ok(given):
            raise HTTPProblem(403, "missing or wrong CSRF token: reload the page and try again")
        fields = {k: v.strip() for k, v in form.items() if k in ("checkpoint", "thread", "name")}
        session = await call(viewer.session, session_id)
        base = f"/sessions/{quote(session_id, safe='')}"
        if form.get("confirm") != "yes":
            # A rollback shows what it leaves behind (SessionManager.plan_rollback): the
            # viewer runs no undo handlers, so those tool calls' effects stay done.
            plan = None
            if kind == "rollback" and fields.get("checkpoint"):
                plan = await call(viewer.mgr.plan_rollback, session.id, fields["checkpoint"])
            return page(
                request,
                "confirm.html",
                s=session,
                kind=kind,
                fields=fields,
                base=base,
                question=_question(kind, fields),
                plan=plan,
                args_text=lambda args: build.cut(_compact(args), 120),
            )
        notice = await call(_perform, viewer.mgr, session, kind, fields)
        return RedirectResponse(f"{base}?{urlencode({'notice': notice})}", status_code=303)

    # --- the API -------------------------------------------------------------------------

    async def api_sessions(request: Request) -> Response:
        params = request.query_params
        user = _user_param(params.get("user", ""))
        offset = _offset_param(params)

        def read() -> dict[str, Any]:
            listed = viewer.sessions(user=user, active=params.get("active") == "1", offset=offset)
            counts = _counted(lambda: viewer.mgr.usages([s.id for s, _ in listed.rows])) or {}
            return build.versioned(
                "sessions",
                sessions=[build.session_view(s, p, counts.get(s.id)) for s, p in listed.rows],
                total=listed.total,
                offset=offset,
                next_offset=offset + len(listed.rows) if listed.more else None,
            )

        return JSONResponse(await call(read))

    async def api_session(request: Request) -> Response:
        session_id = request.path_params["session_id"]

        def read() -> dict[str, Any]:
            s = viewer.session(session_id)
            preview = build.session_preview(viewer.saver, viewer.mgr, s.id)
            branches = viewer.mgr.branches(s.id)
            counted = _counted(
                lambda: (
                    viewer.mgr.usage(s.id),
                    {b.thread_id: viewer.mgr.usage(s.id, thread_id=b.thread_id) for b in branches},
                )
            )
            total, per_branch = counted if counted else (None, {})
            return build.versioned(
                "session",
                session=build.session_view(s, preview, total),
                branches=[
                    build.branch_view(b, s.current_thread_id, per_branch.get(b.thread_id))
                    for b in branches
                ],
                tags=dict(sorted(viewer.mgr.tags(s.id).items())),
            )

        return JSONResponse(await call(read))

    async def api_search(request: Request) -> Response:
        query, _, hits = await searched(request)
        return JSONResponse(
            build.versioned("search", query=query, hits=[build.search_hit_view(h) for h in hits])
        )

    async def api_timeline(request: Request) -> Response:
        timeline = await call(viewer.timeline, request.path_params["session_id"])
        return JSONResponse(build.versioned("timeline", **build.timeline_view(timeline)))

    async def api_checkpoint(request: Request) -> Response:
        timeline = await call(viewer.outline, request.path_params["session_id"])
        detail = await call(viewer.detail, timeline, request.path_params["checkpoint_id"])
        return JSONResponse(build.versioned("checkpoint", checkpoint=detail))

    async def api_diff(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        a = request.query_params.get("a", "")
        b = request.query_params.get("b", "")
        if not a or not b:
            raise HTTPProblem(400, "a diff needs two checkpoints: ?a=…&b=…")
        session = await call(viewer.session, session_id)
        result = await call(viewer.mgr.diff, a, b, session_id=session.id)
        return JSONResponse({**build.diff_view(result), "kind": "diff"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return problem(request, HTTPProblem(404, f"nothing at {request.url.path}"))

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return problem(request, HTTPProblem(405, f"{request.method} is not allowed here"))

    sid = "/sessions/{session_id}"
    routes = [
        Route("/", guarded(sessions_page)),
        # Browsers ask for it on their own; there is none, and a 404 would be noise.
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route(sid, guarded(session_page)),
        Route(sid + "/checkpoints/{checkpoint_id}", guarded(checkpoint_page)),
        Route(sid + "/diff", guarded(diff_page)),
        Route(sid + "/actions/{action}", guarded(action), methods=["POST"]),
        Route("/search", guarded(search_page)),
        Route("/api/search", guarded(api_search)),
        Route("/api/sessions", guarded(api_sessions)),
        Route("/api" + sid, guarded(api_session)),
        Route("/api" + sid + "/timeline", guarded(api_timeline)),
        Route("/api" + sid + "/checkpoints/{checkpoint_id}", guarded(api_checkpoint)),
        Route("/api" + sid + "/diff", guarded(api_diff)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(SecurityMiddleware, guard=guard)],
        exception_handlers={404: not_found, 405: not_allowed},
    )


#: The most a form may send: its fields are ids and names.
MAX_FORM_BYTES = 64 * 1024


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body's fields (the first of each name);
    the viewer's forms send nothing else."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise HTTPProblem(415, "a form must be sent as application/x-www-form-urlencoded")
    # Refused before reading: a client announcing a huge body would otherwise hold the
    # connection until it sent it (or never did).
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise HTTPProblem(413, f"a form may send at most {MAX_FORM_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPProblem(413, f"a form may send at most {MAX_FORM_BYTES} bytes")
    fields: dict[str, str] = {}
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(key, value)
    return fields


T = TypeVar("T")


def _counted(count: Callable[[], T]) -> T | None:
    """Usage counts, or None (left out of the page) when a read-only database's message
    index must be rebuilt first: counts from it would be wrong."""
    try:
        return count()
    except ReadOnlyDatabaseError:
        return None


def _user_param(text: str) -> str | None:
    """``?user=`` as a user id (empty: every user); a malformed one is a 400 naming the
    problem (``check_user_id``'s message)."""
    from langgraph_agentgit.sessions.store import check_user_id

    if not text:
        return None
    try:
        return check_user_id(text)
    except (TypeError, ValueError) as exc:
        raise HTTPProblem(400, f"?user=: {exc}") from exc


def _offset_param(params: Mapping[str, str]) -> int:
    """``?offset=``: a whole number from 0 to ``MAX_OFFSET`` (default 0), else a 400."""
    text = params.get("offset", "0").strip() or "0"
    if not text.isdigit() or not text.isascii() or int(text) > MAX_OFFSET:
        raise HTTPProblem(400, f"?offset= must be a whole number from 0 to {MAX_OFFSET}: {text!r}")
    return int(text)


def marked_snippet(snippet: str) -> Markup:
    """A hit's snippet as HTML: its text escaped, each match (between the search's
    ``>>>`` and ``<<<`` marks) in ``<mark>``."""
    out = []
    for n, piece in enumerate(re.split(r">>>(.*?)<<<", snippet)):
        out.append(f"<mark>{escape(piece)}</mark>" if n % 2 else str(escape(piece)))
    return Markup("".join(out))


def _compact(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))


def _pretty(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _question(kind: str, fields: Mapping[str, str]) -> str:
    checkpoint = fields.get("checkpoint", "")
    name = fields.get("name", "")
    if kind == "tag":
        return f"Tag checkpoint {checkpoint} as {name!r}?"
    if kind == "branch":
        named = f" named {name!r}" if name else ""
        return f"Start a new branch{named} at checkpoint {checkpoint}? The current branch stays."
    if kind == "rollback":
        named = f" named {name!r}" if name else ""
        return (
            f"Roll the session back to checkpoint {checkpoint}? A new branch{named} starts "
            "there and becomes current; the current branch keeps its whole history."
        )
    return f"Make branch {fields.get('thread', '')} the session's current branch?"


def _perform(
    mgr: SessionManager, session: ExternalSession, kind: str, fields: Mapping[str, str]
) -> str:
    checkpoint = fields.get("checkpoint", "")
    name = fields.get("name") or None
    if kind == "tag":
        if not name:
            raise HTTPProblem(400, "a tag needs a name")
        mgr.tag(session.id, checkpoint, name)
        return f"Tagged {checkpoint} as {name}."
    if kind == "branch":
        new = mgr.branch(session.id, checkpoint, name=name)
        return f"Created branch {new.name or new.thread_id} at {checkpoint}."
    if kind == "rollback":
        new = mgr.rollback(session.id, checkpoint, name=name)
        return f"Rolled back to {checkpoint}: branch {new.name or new.thread_id} is current."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EffectsUndoneWarning)
        switched = mgr.checkout(session.id, fields.get("thread", ""))
    said = f"Branch {switched.name or switched.thread_id} is current."
    for warning in caught:
        if issubclass(warning.category, EffectsUndoneWarning):
            said += f" Warning: {warning.message}"
    return said
