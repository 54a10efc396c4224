"""Checks on a model's crate name and Rust source before anything touches the disk or cargo.

These checks are feedback for the model, not the security boundary (the sandbox is): each one
says what is wrong, on which line, and what to do instead.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
_NAME_RE = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class Finding:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def check_name(name: str) -> str | None:
    """An error message for a bad crate name, or None if the name is fine."""
    if not isinstance(name, str) or not name:
        return "name must be a non-empty string"
    if len(name) > 40:
        return f"name is {len(name)} characters long; use at most 40"
    if not _NAME_RE.fullmatch(name):
        shown = name.encode("unicode_escape").decode()[:60]
        return (f"name {shown!r} is not allowed: use 1-40 characters of lowercase letters, digits and "
                "underscores, starting with a letter (e.g. 'padic_momentum')")
    return None


def strip_comments_and_strings(source: str, *, keep_strings: bool = False) -> str:
    """Blank out comments and the contents of string/char literals, keeping line structure.

    With `keep_strings`, only comments are blanked (for duplicate detection).

    Keeping newlines means a finding's line number is the model's own line number.
    """
    out: list[str] = []
    i, n = 0, len(source)

    def blank(segment: str) -> str:
        return "".join(ch if ch == "\n" else " " for ch in segment)

    while i < n:
        ch = source[i]
        nxt = source[i + 1] if i + 1 < n else ""
        if ch == "/" and nxt == "/":
            end = source.find("\n", i)
            end = n if end == -1 else end
            out.append(blank(source[i:end]))
            i = end
        elif ch == "/" and nxt == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if source.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif source.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(source[i:j]))
            i = j
        elif ch == "r" and re.match(r'r#*"', source[i:i + 260]) and _literal_prefix_starts(source, i):
            hashes = len(re.match(r"r(#*)", source[i:]).group(1))  # type: ignore[union-attr]
            terminator = '"' + "#" * hashes
            start = i + 2 + hashes
            end = source.find(terminator, start)
            end = n if end == -1 else end + len(terminator)
            out.append(source[i:end] if keep_strings else
                       'r"' + blank(source[start:max(start, end - len(terminator))]) + '"')
            i = end
        elif ch == '"':
            j = i + 1
            while j < n and source[j] != '"':
                j += 2 if source[j] == "\\" else 1
            out.append(source[i:j + 1] if keep_strings else '"' + blank(source[i + 1:j]) + '"')
            i = j + 1
        elif ch == "'":
            # A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a): only the former is blanked.
            match = re.match(r"'(\\(u\{[0-9a-fA-F]{1,6}\}|x[0-9a-fA-F]{2}|.)|[^\\'])'", source[i:i + 12])
            if match:
                out.append(match.group(0) if keep_strings else "' '")
                i += match.end()
            else:
                out.append(ch)
                i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _ident(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _literal_prefix_starts(source: str, i: int) -> bool:
    """Whether the `r` at `i` opens a raw string: `r"`, or the `r` of `br"` / `cr"` (byte and C strings)."""
    if i == 0 or not _ident(source[i - 1]):
        return True
    return source[i - 1] in "bc" and (i == 1 or not _ident(source[i - 2]))


# (pattern on code with comments and strings blanked, what to tell the model)
_FORBIDDEN: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bunsafe\b"), "`unsafe` is forbidden; write safe Rust (index slices, use iterators)"),
    (re.compile(r"#\s*!?\s*\[\s*path\b"), "`#[path]` is forbidden; keep everything in this one file"),
    (re.compile(r"\binclude(_str|_bytes)?\s*!"), "`include!`/`include_str!`/`include_bytes!` are forbidden; "
     "the optimizer must not read files"),
    (re.compile(r"\b(option_)?env\s*!"), "`env!`/`option_env!` are forbidden; the optimizer must not read "
     "the environment"),
    (re.compile(r"\bextern\s+crate\b"), "`extern crate` is forbidden; only std and frontier_core are available"),
    (re.compile(r"\bextern\s*(\"|\{)|#\s*\[\s*(link|no_mangle|export_name|link_section)\b"),
     "FFI and linker attributes are forbidden"),
    (re.compile(r"\bcfg_attr\b"), "`cfg_attr` is not allowed: write attributes directly"),
    (re.compile(r"\bmacro_rules\s*!|^\s*(pub\s+)?macro\s+\w", re.MULTILINE),
     "defining macros is not allowed (a macro can assemble paths the checks cannot see); write functions"),
    (re.compile(r"\b(global_)?asm\s*!"), "inline assembly is forbidden"),
    (re.compile(r"\b(std|core|alloc)\s+as\b|\b(std|core|alloc)\s*::\s*\$"),
     "renaming `std` (or reaching it through a macro variable) is not allowed: write `std::...` paths"),
    (re.compile(r"\bfrontier_(bench|problems|baselines)\b"),
     "only `frontier_core` and `std` may be used: the harness's crates hold the problems and data, which an "
     "optimizer must not see"),
    (re.compile(r"^[ \t]*(pub\s+)?mod\s+\w+\s*;", re.MULTILINE),
     "`mod name;` would load another file; put every item in this one file (inline `mod name { ... }` is fine)"),
    (re.compile(r"\b(print|println|eprint|eprintln|dbg)\s*!"),
     "printing is not allowed (stdout carries the harness's results); remove print!/println!/dbg!"),
]


# The parts of std an optimizer needs. Everything else (io, fs, net, process, env, os, thread, time,
# panic hooks...) is refused: besides the host, those would let a candidate write to the harness's
# stdout and forge its own results. The sandbox protects the machine; this protects the numbers.
STD_ALLOWED = frozenset({
    "f64", "f32", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize",
    "cmp", "mem", "iter", "ops", "collections", "vec", "num", "cell", "rc", "boxed", "slice", "array",
    "convert", "default", "marker", "option", "result", "string", "borrow", "fmt", "hint", "hash", "char",
    "str", "primitive", "any", "clone", "prelude",
})
_STD_ROOT = re.compile(r"\b(?:std|core|alloc)\s*::\s*")
_SEGMENT = re.compile(r"\*|[A-Za-z_]\w*")


def _first_segments(code: str, start: int) -> list[str]:
    """The first path segment of every branch of the path (or use tree) that begins at `start`.

    `std::{collections::{HashMap}, io}` gives ["collections", "io"]; `std::*` gives ["*"]. A
    brace group is matched with nesting, so nothing hides after an inner `}`.
    """
    if start >= len(code):
        return [""]
    if code[start] != "{":
        match = _SEGMENT.match(code, start)
        return [match.group(0) if match else code[start:start + 1]]
    depth, item_start, names = 0, start + 1, []
    for index in range(start, len(code)):
        char = code[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        if (char == "," and depth == 1) or depth == 0:
            item = code[item_start:index]
            offset = len(item) - len(item.lstrip())
            if item.strip():
                names += _first_segments(code, item_start + offset)
            item_start = index + 1
            if depth == 0:
                return names
    return [*names, "{"]  # an unclosed brace: refuse rather than guess


def _std_findings(code: str) -> list[Finding]:
    findings = []
    for match in _STD_ROOT.finditer(code):
        for name in _first_segments(code, match.end()):
            if name not in STD_ALLOWED:
                line = code.count("\n", 0, match.start()) + 1
                shown = "*" if name == "*" else name or "?"
                findings.append(Finding(line, f"`std::{shown}` is not available to an optimizer (no globs, no "
                                              f"`self`); use only "
                                              f"{', '.join(sorted(STD_ALLOWED - {'prelude', 'primitive'}))}"))
    return findings


def check_source(source: str, max_bytes: int) -> list[Finding]:
    """Every rule the source breaks, with the model's own line numbers."""
    size = len(source.encode("utf-8", errors="replace"))
    if size > max_bytes:
        return [Finding(1, f"source is {size} bytes; the limit is {max_bytes} bytes. Keep the optimizer "
                           "to one focused file")]
    if "\x00" in source:
        return [Finding(source[: source.index("\x00")].count("\n") + 1, "source contains a NUL byte")]
    code = strip_comments_and_strings(source)
    findings: list[Finding] = []
    for pattern, message in _FORBIDDEN:
        for match in pattern.finditer(code):
            line = code.count("\n", 0, match.start()) + 1
            findings.append(Finding(line, message))
    findings += _std_findings(code)
    if not re.search(r"\bpub\s+fn\s+build\s*\(\s*\)", code):
        findings.append(Finding(1, "the file must define `pub fn build() -> impl Optimizer + 'static` "
                                   "returning your optimizer"))
    findings.sort(key=lambda finding: finding.line)
    return findings


def normalized_hash(source: str) -> str:
    """Hash of the source without comments or whitespace: catches re-submissions with new comments."""
    code = strip_comments_and_strings(source, keep_strings=True)
    return hashlib.sha256(re.sub(r"\s+", "", code).encode()).hexdigest()
