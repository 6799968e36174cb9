"""customers-mcp: one customer across the vendors, for an AI agent (Model Context Protocol)."""
