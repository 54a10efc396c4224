"""Parsing cargo's JSON messages (a recorded shape; the real thing is exercised end to end)."""

import json
from pathlib import Path

from frontier_mcp.cargo import parse_messages

CRATE = Path("/lab/candidates/x")
WORKSPACE = Path("/lab/workspace")


def message(level: str, text: str, file: str | None, line: int = 3, rendered: str = "") -> bytes:
    spans = [] if file is None else [{"file_name": file, "line_start": line, "column_start": 9,
                                      "is_primary": True}]
    return json.dumps({"reason": "compiler-message", "message": {
        "level": level, "message": text, "code": {"code": "E0308"} if level == "error" else None,
        "spans": spans, "rendered": rendered or text}}).encode()


def test_errors_map_to_the_model_file_and_noise_is_dropped() -> None:
    stdout = b"\n".join([
        message("warning", "unused variable", "src/optimizer.rs", 7),
        message("error", "mismatched types", "/lab/candidates/x/src/optimizer.rs", 12,
                rendered="error[E0308]: mismatched types\n --> /lab/candidates/x/src/optimizer.rs:12:9"),
        message("error", "aborting due to 1 previous error", None),
        b"not json",
        json.dumps({"reason": "build-finished", "success": False}).encode(),
    ])
    diagnostics, ok = parse_messages(stdout, crate=CRATE, workspace=WORKSPACE)
    assert not ok
    assert [(d.level, d.file, d.line) for d in diagnostics] == [("error", "optimizer.rs", 12),
                                                                ("warning", "optimizer.rs", 7)]
    assert "/lab/" not in diagnostics[0].rendered and "optimizer.rs:12:9" in diagnostics[0].rendered
    assert diagnostics[0].code == "E0308"


def test_harness_files_are_named_relative_to_the_scaffold() -> None:
    stdout = message("error", "trait bound", "/lab/workspace/crates/core/src/lib.rs", 40)
    diagnostics, _ = parse_messages(stdout, crate=CRATE, workspace=WORKSPACE)
    assert diagnostics[0].file == "frontier/crates/core/src/lib.rs"
