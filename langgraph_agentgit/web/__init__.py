"""``agentgit serve``: a local web viewer of a database's sessions and branch timelines.

Built on Starlette, Jinja2 and uvicorn; its pages and JSON API (``/api/``) come from the
views layer (:mod:`langgraph_agentgit.views`). Safe by default: it listens on loopback;
any other address needs an access token; a change needs the CSRF token and a
confirmation; the ``Host`` header is checked; everything from the database is escaped,
under a Content-Security-Policy that allows no inline script.

::

    agentgit serve --db agentgit.db          # http://127.0.0.1:8765/
"""

from __future__ import annotations

from langgraph_agentgit.web.app import create_app
from langgraph_agentgit.web.security import Guard, allowed_hosts, is_loopback

__all__ = ["Guard", "allowed_hosts", "create_app", "is_loopback"]
