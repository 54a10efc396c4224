"""Everything drawn from the archive, by audience. Every renderer takes the typed report
(`archive.load_report` -> `protocol.BenchmarkReport`), never the archived JSON.

    text       text for the model (the readable half of a tool's reply)
    terminal   rich tables and trees for the CLI
    html       self-contained HTML pages (Jinja2 templates in templates/, autoescaped)
    svg        loss curves as inline SVG
    app        the inline verdict: the HTML pages' templates as an MCP Apps view, with its host bridge
    env        the Jinja2 environment and its filters
"""
