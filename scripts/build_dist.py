#!/usr/bin/env python3
"""Build what frontier-mcp is distributed as, and check it: one command.

    python3 scripts/build_dist.py [--out dist]

1. the versions agree: pyproject.toml, frontier_mcp.__version__, server.json, the bundle's manifest and pyproject;
2. server.json is valid against the MCP registry's schema (vendored in tests/fixtures) and its name is the
   README's `mcp-name:` line;
3. the sdist and the wheel (`python -m build`: the wheel is built from the sdist), and the wheel carries the
   Rust scaffold and the prompts and no build output;
4. the Claude Desktop bundle, `frontier-mcp-VERSION.mcpb`: packaging/mcpb/ plus the wheel, validated and packed
   by `npx @anthropic-ai/mcpb` (MCPB_VERSION below); without npx, the same zip is written here and the manifest
   is checked only for the fields this script reads (said on stderr).

Prints each artefact with its size and sha256. Needs `build` and `jsonschema` (the dev extra) and the network
for PyPI (build's isolated environment) and, the first time, the npm registry.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_SOURCE = ROOT / "packaging" / "mcpb"
SERVER_JSON = ROOT / "server.json"
REGISTRY_SCHEMA = ROOT / "tests" / "fixtures" / "mcp-registry-server.schema.2025-12-11.json"
MCPB_VERSION = "2.1.2"  # @anthropic-ai/mcpb, pinned: its validator is the bundle's spec
WHEEL_MUST_HOLD = ("frontier_mcp/rust_scaffold/Cargo.toml", "frontier_mcp/rust_scaffold/template/optimizer.rs",
                   "frontier_mcp/prompts/research_brief.md", "frontier_mcp/data/fields.toml")


class BuildError(Exception):
    pass


def package_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def version_problems(version: str) -> list[str]:
    """Every place that states the version, and what it says if it is not `version`."""
    entry = json.loads(SERVER_JSON.read_text())
    found = {
        "src/frontier_mcp/__init__.py __version__": next(
            (line.split("=", 1)[1].strip().strip("\"'") for line in
             (ROOT / "src" / "frontier_mcp" / "__init__.py").read_text().splitlines()
             if line.startswith("__version__")), None),
        "server.json version": entry.get("version"),
        "server.json packages[0].version": (entry.get("packages") or [{}])[0].get("version"),
        "packaging/mcpb/manifest.json version": json.loads((BUNDLE_SOURCE / "manifest.json").read_text())["version"],
    }
    bundle = tomllib.loads((BUNDLE_SOURCE / "pyproject.toml").read_text())
    found["packaging/mcpb/pyproject.toml version"] = bundle["project"]["version"]
    found["packaging/mcpb/pyproject.toml dependency"] = bundle["project"]["dependencies"][0].split("==")[-1]
    found["packaging/mcpb/pyproject.toml wheel"] = (
        bundle["tool"]["uv"]["sources"]["frontier-mcp"]["path"].split("-")[1])
    return [f"{where} is {value!r}, not {version!r}" for where, value in found.items() if value != version]


def check_server_json() -> None:
    import jsonschema

    entry = json.loads(SERVER_JSON.read_text())
    schema = json.loads(REGISTRY_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = [f"server.json {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
              for e in validator.iter_errors(entry)]
    if entry.get("$schema") != schema["$id"]:
        errors.append(f"server.json $schema is {entry.get('$schema')!r}, the vendored schema is {schema['$id']!r}")
    if f"mcp-name: {entry.get('name')}" not in (ROOT / "README.md").read_text():
        errors.append(f"README.md has no line `mcp-name: {entry.get('name')}` (the registry checks it on PyPI)")
    if errors:
        raise BuildError("\n".join(errors))


def build_python(out: Path) -> tuple[Path, Path]:
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"python -m build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    version = package_version()
    wheel = out / f"frontier_mcp-{version}-py3-none-any.whl"
    sdist = out / f"frontier_mcp-{version}.tar.gz"
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in WHEEL_MUST_HOLD if name not in names]
    leaked = sorted(name for name in names if "/target/" in name)[:5]
    if missing or leaked:
        raise BuildError(f"the wheel lacks {missing} or carries build output {leaked}")
    return sdist, wheel


def npx() -> str | None:
    return shutil.which("npx")


def mcpb(*args: str, cwd: Path) -> str:
    done = subprocess.run([npx() or "npx", "-y", f"@anthropic-ai/mcpb@{MCPB_VERSION}", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise BuildError(f"mcpb {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def build_bundle(wheel: Path, out: Path) -> Path:
    version = package_version()
    target = out / f"frontier-mcp-{version}.mcpb"
    with tempfile.TemporaryDirectory(prefix="frontier-mcpb-") as tmp:
        stage = Path(tmp) / "frontier-mcp"
        shutil.copytree(BUNDLE_SOURCE, stage, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".venv"))
        (stage / "wheels").mkdir()
        shutil.copy2(wheel, stage / "wheels" / wheel.name)
        target.unlink(missing_ok=True)
        if npx():
            mcpb("validate", str(stage / "manifest.json"), cwd=stage)
            mcpb("pack", str(stage), str(target), cwd=stage)
        else:
            print("build_dist: npx not found: the bundle is zipped here, not validated by mcpb", file=sys.stderr)
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as bundle:
                for path in sorted(stage.rglob("*")):
                    if path.is_file():
                        bundle.write(path, path.relative_to(stage).as_posix())
    with zipfile.ZipFile(target) as bundle:
        names = set(bundle.namelist())
        manifest = json.loads(bundle.read("manifest.json"))
    expected = {"manifest.json", "pyproject.toml", manifest["server"]["entry_point"], f"wheels/{wheel.name}"}
    if not expected <= names:
        raise BuildError(f"the bundle lacks {sorted(expected - names)}")
    return target


def describe(path: Path) -> str:
    size = path.stat().st_size
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    shown = f"{size / 1e6:.2f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"
    return f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  {shown} ({size} bytes)  sha256 {digest}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where the artefacts go (default: dist/)")
    args = parser.parse_args(argv)
    out: Path = args.out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    try:
        version = package_version()
        problems = version_problems(version)
        if problems:
            raise BuildError("the version differs between files:\n" + "\n".join(problems))
        check_server_json()
        sdist, wheel = build_python(out)
        bundle = build_bundle(wheel, out)
    except BuildError as exc:
        print(f"build_dist: {exc}", file=sys.stderr)
        return 1
    print(f"frontier-mcp {version}: server.json valid (registry schema 2025-12-11)")
    for path in (wheel, sdist, bundle, SERVER_JSON):
        print(describe(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
