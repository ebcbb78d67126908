"""The MCP door (contract 7): a Model Context Protocol server at ``/mcp/``, for agents' tool calls.

``server`` holds the tools as MCP sees them (built on the official ``mcp`` SDK's low-level ``Server``), with
``tools`` (what ``tools/list`` answers) and ``answers`` (what the model reads back); ``http`` serves it from
the project's WSGI app. Like every door it authenticates, parses and calls the same services as the REST API
(``services.proposal_submit``, ``reads.tool_read``), audited with ``channel="mcp"``.
"""
