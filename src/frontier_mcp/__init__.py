"""frontier-mcp: an MCP server that runs an automated optimizer-research lab."""

__version__ = "0.1.0"
