"""``python -m langgraph_agentgit``: the same as the ``agentgit`` command."""

from langgraph_agentgit.cli import main

if __name__ == "__main__":
    main()
