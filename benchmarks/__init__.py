"""Benchmarks of langgraph-agentgit against LangGraph's own checkpointers.

Run ``python -m benchmarks.run`` (what ``make bench`` does) to write ``docs/benchmarks.md``
and ``docs/benchmarks.json``; ``--smoke`` runs every workload at a tiny size.
"""
