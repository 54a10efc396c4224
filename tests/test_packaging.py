"""What users install: the wheel (PyPI, `uvx frontier-mcp`, `pipx run`), built here and installed into fresh
environments, then started over stdio by a real MCP client with a host's bare environment; and the MCP
registry's entry, server.json, checked against the registry's schema (vendored in tests/fixtures).

The wheel carries the Rust scaffold and the prompts (so an install outside a checkout works) and no build
output; its metadata is what PyPI shows, including the `mcp-name:` line the MCP registry checks. Tests
that build or install are marked slow; the checks of server.json are fast."""

from __future__ import annotations

import copy
import email.parser
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
REGISTRY_NAME = "io.github.frontier-mcp/frontier-mcp"
REPOSITORY = "https://github.com/frontier-mcp/frontier-mcp"
SERVER_JSON = ROOT / "server.json"
# https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json, byte for byte (its sha256 is
# pinned below): the registry's current schema, vendored so that no test needs the network.
REGISTRY_SCHEMA = ROOT / "tests" / "fixtures" / "mcp-registry-server.schema.2025-12-11.json"
REGISTRY_SCHEMA_SHA256 = "3fba09590c99f61735d234822279f4223fab9e300c0a81e81c91ab62a4114de0"


def registry_errors(entry: dict[str, object]) -> list[str]:
    """What the registry's schema finds wrong with a server.json, one line each; empty when valid."""
    schema = json.loads(REGISTRY_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(entry)]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    return next(out.glob("frontier_mcp-*.whl"))


def uv_binary() -> str | None:
    """uv from the environment running the tests (the dev extra installs it), else from PATH."""
    try:
        import uv  # type: ignore[import-not-found]

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def host_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What a host gives a server it starts: a short PATH (no cargo on it) and a HOME (with no ~/.cargo)."""
    home = tmp_path / "user"
    home.mkdir(exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "FRONTIER_HOME": str(tmp_path / "lab"), **extra}


def download_env() -> dict[str, str]:
    """This machine's settings for fetching packages (certificates, proxies, uv's and pip's own settings and
    cache): what a host's uv needs to install the server's dependencies, none of it the server's business."""
    env = {key: value for key, value in os.environ.items()
           if any(part in key.upper() for part in ("CERT", "CA_BUNDLE", "PROXY")) or key.startswith(("UV_", "PIP_"))}
    env.setdefault("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv"))  # keep the cache warm from run to run
    return env


def registered_tools(home: Path) -> set[str]:
    """The tools of the checkout's server (in memory, in a lab of its own), to compare the installed one with."""
    from frontier_mcp.server import build_server
    from frontier_mcp.settings import load_settings

    async def names() -> set[str]:
        settings = load_settings(home=home, environ={}, cargo=str(home / "no-cargo"))  # nothing to build
        async with Client(build_server(settings)) as client:
            return {tool.name for tool in (await client.list_tools()).tools}

    return anyio.run(names)


async def handshake(params: StdioServerParameters) -> tuple[str, str, set[str], set[str]]:
    """initialize (the handshake today's hosts speak), tools/list and prompts/list over stdio."""
    async with Client(params, mode="legacy", read_timeout_seconds=120) as client:
        info = client.server_info
        assert info is not None
        tools = {tool.name for tool in (await client.list_tools()).tools}
        prompts = {prompt.name for prompt in (await client.list_prompts()).prompts}
        return info.name, info.version, tools, prompts


@pytest.mark.slow
def test_wheel_holds_scaffold_and_prompts_but_no_target(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "frontier_mcp/rust_scaffold/Cargo.toml" in names
    assert "frontier_mcp/rust_scaffold/crates/core/src/lib.rs" in names
    assert "frontier_mcp/rust_scaffold/template/optimizer.rs" in names
    assert "frontier_mcp/data/fields.toml" in names
    assert "frontier_mcp/render/templates/experiment.html.j2" in names  # the HTML reports' templates
    for prompt in ("research_brief", "translate", "iterate"):
        assert f"frontier_mcp/prompts/{prompt}.md" in names
    assert not [n for n in names if "/target/" in n], "build output leaked into the wheel"


@pytest.mark.slow
def test_wheel_metadata_is_what_pypi_and_the_registry_need(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(f"frontier_mcp-{VERSION}.dist-info/METADATA").decode()
    meta = email.parser.Parser().parsestr(text)
    assert meta["Name"] == "frontier-mcp" and meta["Version"] == VERSION
    from frontier_mcp import __version__
    assert __version__ == VERSION, "frontier_mcp.__version__ (what the server reports) differs from pyproject.toml"
    assert meta["License-Expression"] == "MIT"
    assert meta["Description-Content-Type"] == "text/markdown"
    urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL", []))
    assert {"Homepage", "Source", "Issues", "Documentation"} <= set(urls), urls
    assert all(url.startswith(REPOSITORY) for url in urls.values()), urls
    classifiers = set(meta.get_all("Classifier", []))
    assert {"Operating System :: POSIX :: Linux", "Programming Language :: Python :: 3.11",
            "Development Status :: 3 - Alpha"} <= classifiers
    assert "mcp" in meta["Keywords"].split(",")
    # The registry proves PyPI ownership by finding this line in the package's description (the README),
    # and the registry name's owner must be the repository's.
    assert f"mcp-name: {REGISTRY_NAME}" in meta.get_payload()
    owner, repository = urls["Source"].removeprefix("https://github.com/").split("/")[:2]
    assert f"io.github.{owner}/{repository}" == REGISTRY_NAME
    # The base install: the dependencies and nothing from the extras.
    base = sorted(r for r in meta.get_all("Requires-Dist", []) if "extra ==" not in r)
    assert len(base) == len(PYPROJECT["project"]["dependencies"]), base
    assert not [r for r in base if r.split(">")[0].split("<")[0] in {"ray", "pytest", "uv", "jsonschema"}], base
    assert set(meta.get_all("Provides-Extra", [])) == {"dev", "ray"}


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv_and_serves_over_stdio(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
                               capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    command = str(venv / "bin" / "frontier-mcp")
    helped = subprocess.run([command, "--help"], capture_output=True, text=True, timeout=60,
                            env=host_env(tmp_path), cwd="/")
    assert helped.returncode == 0 and "serve" in helped.stdout, helped.stdout + helped.stderr
    name, version, tools, prompts = anyio.run(handshake, StdioServerParameters(
        command=command, args=["serve"], env=host_env(tmp_path), cwd="/"))
    assert (name, version) == ("frontier-mcp", VERSION)
    assert tools == registered_tools(tmp_path / "checkout-lab") and len(tools) == 10
    assert prompts == {"research_brief", "translate", "iterate"}
    # Installed from the wheel, not from this checkout: the scaffold it installs into a lab is its own copy.
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import frontier_mcp; print(frontier_mcp.__file__)"],
                           capture_output=True, text=True, check=True, cwd="/").stdout
    assert where.startswith(str(venv)), where


@pytest.mark.slow
def test_uvx_runs_the_built_wheel(wheel: Path, tmp_path: Path) -> None:
    """`uvx frontier-mcp` as a host runs it (here `uv tool run --from WHEEL`, the same command on a local wheel)."""
    uv = uv_binary()
    if uv is None:
        pytest.skip("uv is not installed (the dev extra installs it)")
    env = host_env(tmp_path, **download_env())
    args = ["tool", "run", "--from", str(wheel), "frontier-mcp"]
    shown = subprocess.run([uv, *args, "--version"], capture_output=True, text=True, timeout=900, env=env, cwd="/")
    assert shown.returncode == 0 and shown.stdout.strip() == f"frontier-mcp {VERSION}", shown.stdout + shown.stderr
    name, version, tools, prompts = anyio.run(handshake, StdioServerParameters(
        command=uv, args=[*args, "serve"], env=env, cwd="/"))
    assert (name, version) == ("frontier-mcp", VERSION)
    assert tools == registered_tools(tmp_path / "checkout-lab")
    assert prompts == {"research_brief", "translate", "iterate"}


# -- the MCP registry entry ------------------------------------------------------------------------------


def test_server_json_is_valid_against_the_registry_schema() -> None:
    assert hashlib.sha256(REGISTRY_SCHEMA.read_bytes()).hexdigest() == REGISTRY_SCHEMA_SHA256, \
        "the vendored registry schema was changed: replace it with a published one and pin its sha256"
    entry = json.loads(SERVER_JSON.read_text())
    assert entry["$schema"] == json.loads(REGISTRY_SCHEMA.read_text())["$id"]
    assert registry_errors(entry) == []
    # The schema is really applied: what the registry refuses is refused here too.
    too_long = copy.deepcopy(entry)
    too_long["description"] = "x" * 101
    no_transport = copy.deepcopy(entry)
    del no_transport["packages"][0]["transport"]
    bad_name = copy.deepcopy(entry)
    bad_name["name"] = "frontier-mcp"
    for broken in (too_long, no_transport, bad_name):
        assert registry_errors(broken), broken


def test_server_json_describes_this_package() -> None:
    from frontier_mcp import __version__

    entry = json.loads(SERVER_JSON.read_text())
    (package,) = entry["packages"]
    assert entry["version"] == package["version"] == VERSION == __version__, \
        "server.json's versions must equal the package's (pyproject.toml and frontier_mcp.__version__)"
    assert (package["registryType"], package["identifier"]) == ("pypi", PYPROJECT["project"]["name"])
    assert package["transport"] == {"type": "stdio"} and package["runtimeHint"] == "uvx"
    assert entry["name"] == REGISTRY_NAME
    # The registry proves ownership of the PyPI package by this line in its description (the README).
    readme_names = [line.split("mcp-name:", 1)[1].split()[0] for line in (ROOT / "README.md").read_text().splitlines()
                    if line.startswith("mcp-name:")]
    assert readme_names == [entry["name"]]
    assert entry["repository"] == {"url": PYPROJECT["project"]["urls"]["Source"], "source": "github"}


def test_server_json_names_only_variables_the_server_reads(tmp_path: Path) -> None:
    """Each documented variable, set to a value of its format, changes the settings the server starts with."""
    from frontier_mcp.settings import load_settings

    (package,) = json.loads(SERVER_JSON.read_text())["packages"]
    names = [variable["name"] for variable in package["environmentVariables"]]
    assert {"FRONTIER_HOME", "FRONTIER_CARGO", "FRONTIER_WORKERS"} <= set(names)
    base = load_settings(environ={"FRONTIER_HOME": str(tmp_path / "lab")})
    for variable in package["environmentVariables"]:
        value = {"filepath": str(tmp_path / "somewhere"), "number": "63"}.get(variable.get("format", "string"))
        if "choices" in variable:
            value = next(choice for choice in variable["choices"] if choice != variable.get("default"))
        assert value is not None, variable
        changed = load_settings(environ={"FRONTIER_HOME": str(tmp_path / "lab"), variable["name"]: value})
        assert changed != base, f"{variable['name']}={value} changes nothing the server reads"


# -- a server without cargo or bubblewrap (what a bundle starts on a machine that lacks them) -------------

EXAMPLE = (ROOT / "rust_scaffold" / "template" / "optimizer.rs").read_text()
# One call of every tool, each of which would do something real in the seeded lab below.
TOOL_CALLS: dict[str, dict[str, object]] = {
    "propose_pairing": {}, "history": {}, "leaderboard": {}, "experiment": {"experiment_id": 1},
    "write_crate": {"pairing_id": 1, "name": "another", "source": EXAMPLE, "statement": "A valid statement.",
                    "mechanism": "A valid mechanism.", "prediction": "A valid prediction."},
    "compile": {"experiment_id": 1}, "benchmark": {"experiment_id": 1}, "ablate": {"experiment_id": 1},
    "job_status": {"job_id": "bench-quick-0", "wait_seconds": 0},
    "record_result": {"experiment_id": 1, "verdict": "broken", "notes": "n"},
}


def seeded_lab(home: Path) -> Path:
    from frontier_mcp.archive import Archive
    from frontier_mcp.validate import normalized_hash

    archive = Archive(home / "state.db")
    try:
        pairing = archive.add_pairing("knot-theory", "fluid-dynamics", None)
        archive.add_experiment(name="seeded", pairing_id=pairing, parent_id=None, source=EXAMPLE,
                               normalized_sha256=normalized_hash(EXAMPLE), statement="Seeded.", mechanism="SGD.",
                               prediction="Nothing.")
    finally:
        archive.close()
    return home


@pytest.mark.parametrize("missing", ["cargo", "bwrap", "both"])
def test_without_cargo_or_bubblewrap_every_tool_answers_how_to_install_them(tmp_path: Path, missing: str) -> None:
    from frontier_mcp.server import build_server
    from frontier_mcp.settings import load_settings

    home = seeded_lab(tmp_path / "lab")
    present = sys.executable  # any existing file stands for the one that is there: nothing gets built
    settings = load_settings(home=home, environ={},
                             cargo=str(tmp_path / "no-cargo") if missing in ("cargo", "both") else present,
                             bwrap=str(tmp_path / "no-bwrap") if missing in ("bwrap", "both") else present)

    async def session() -> tuple[set[str], dict[str, str]]:
        async with Client(build_server(settings)) as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
            answers = {}
            for name, args in TOOL_CALLS.items():
                result = await client.call_tool(name, args)
                text = " ".join(getattr(c, "text", "") for c in result.content)
                assert result.is_error, f"{name} answered without cargo/bubblewrap: {text[:300]}"
                answers[name] = text.split(": ", 1)[1] if text.startswith("Error executing tool") else text
            return listed, answers

    listed, answers = anyio.run(session)
    assert listed == set(TOOL_CALLS), "every tool is called here"
    (message,) = set(answers.values())  # one message, whichever tool is called
    assert ("https://rustup.rs" in message and "FRONTIER_CARGO" in message) == (missing in ("cargo", "both"))
    assert ("apt-get install bubblewrap" in message) == (missing in ("bwrap", "both"))
    assert "No restart is needed" in message and len(message) < 1000, message


def test_the_gate_opens_once_the_toolchain_is_there(tmp_path: Path) -> None:
    """The check runs again on each use, so a tool call after installing cargo goes through, without a restart."""
    from frontier_mcp.archive import Archive
    from frontier_mcp.runtime import ToolchainGate, ToolchainMissing
    from frontier_mcp.sandbox import Sandbox
    from frontier_mcp.settings import load_settings

    settings = load_settings(home=tmp_path, environ={}, cargo=str(tmp_path / "bin" / "cargo"))
    archive = Archive(seeded_lab(tmp_path) / "state.db")
    try:
        gate = ToolchainGate(archive, settings, Sandbox(limits=settings.limits, enabled=False))
        with pytest.raises(ToolchainMissing, match=r"rustup\.rs"):
            gate.history(limit=5, offset=0, status=None, field=None)
        (tmp_path / "bin").mkdir()
        (tmp_path / "bin" / "cargo").write_text("")
        rows, total = gate.history(limit=5, offset=0, status=None, field=None)
        assert total == 1 and rows[0]["name"] == "seeded"
    finally:
        archive.close()


@pytest.mark.slow
def test_a_server_started_without_cargo_compiles_once_cargo_is_installed(lab_home: Path, tmp_path: Path) -> None:
    """Over stdio, as a host starts it: no cargo on its PATH or in ~/.cargo/bin. Then rustup's cargo and rustc
    appear in ~/.cargo/bin (what installing Rust does), and the same server process goes on to compile."""
    if shutil.which("cargo", path="/usr/bin:/bin"):
        pytest.skip("cargo is installed system-wide here: a server cannot be started without it")
    cargo = Path(shutil.which("cargo") or Path.home() / ".cargo" / "bin" / "cargo")
    rustc = Path(shutil.which("rustc") or cargo.parent / "rustc")
    env = host_env(tmp_path, FRONTIER_HOME=str(lab_home), FRONTIER_LOG_LEVEL="WARNING",
                   RUSTUP_HOME=os.environ.get("RUSTUP_HOME") or str(Path.home() / ".rustup"))
    bin_dir = Path(env["HOME"]) / ".cargo" / "bin"

    async def text_of(client: Client, name: str, args: dict[str, object]) -> tuple[bool, str, dict[str, object]]:
        result = await client.call_tool(name, args)
        text = " ".join(getattr(c, "text", "") for c in result.content)
        return result.is_error, text, result.structured_content or {}

    async def session() -> None:
        params = StdioServerParameters(command=sys.executable, args=["-m", "frontier_mcp", "serve"], env=env, cwd="/")
        async with Client(params, read_timeout_seconds=600) as client:
            failed, text, _ = await text_of(client, "propose_pairing", {"allow_repeat": True})
            assert failed and "cargo was not found" in text and "https://rustup.rs" in text, text
            bin_dir.mkdir(parents=True)
            (bin_dir / "cargo").symlink_to(cargo)
            (bin_dir / "rustc").symlink_to(rustc)
            failed, text, pairing = await text_of(client, "propose_pairing", {"allow_repeat": True})
            assert not failed, text
            failed, text, written = await text_of(client, "write_crate", {
                "pairing_id": pairing["pairing_id"], "name": f"after_install_{os.getpid()}", "source": EXAMPLE,
                "statement": "Compiles once cargo is there.", "mechanism": "See the source.",
                "prediction": "The server needs no restart."})
            assert not failed, text
            for _ in range(60):  # the lab is prepared again first: the server says so, and to call again
                failed, text, built = await text_of(client, "compile", {"experiment_id": written["experiment_id"]})
                if not failed and built.get("status") != "preparing":
                    break
                assert not failed or "installed now" in text, text
                await anyio.sleep(5)
            assert not failed and built["ok"], (text, built)

    anyio.run(session)


# -- the Claude Desktop bundle (.mcpb) ----------------------------------------------------------------------

BUNDLE = ROOT / "packaging" / "mcpb"


def build_dist_module() -> Any:
    spec = importlib.util.spec_from_file_location("build_dist", ROOT / "scripts" / "build_dist.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_bundle_manifest_matches_the_package(tmp_path: Path) -> None:
    from frontier_mcp.settings import load_settings

    assert build_dist_module().version_problems(VERSION) == []
    manifest = json.loads((BUNDLE / "manifest.json").read_text())
    assert manifest["manifest_version"] == "0.4" and manifest["server"]["type"] == "uv"
    assert (BUNDLE / manifest["server"]["entry_point"]).is_file()
    assert manifest["compatibility"]["platforms"] == ["linux"]  # bubblewrap is Linux only
    assert {tool["name"] for tool in manifest["tools"]} == registered_tools(tmp_path / "checkout-lab")
    # Each user option reaches the server as a variable its settings read.
    env = manifest["server"]["mcp_config"]["env"]
    assert set(manifest["user_config"]) == {"lab_folder", "cargo_path", "cpu_budget"}
    assert sorted(env.values()) == sorted(f"${{user_config.{key}}}" for key in manifest["user_config"])
    base = load_settings(environ={"FRONTIER_HOME": str(tmp_path / "lab")})
    for variable, sample in {"FRONTIER_HOME": str(tmp_path / "other"), "FRONTIER_CARGO": str(tmp_path / "cargo"),
                             "FRONTIER_WORKERS": "63"}.items():
        assert variable in env
        assert load_settings(environ={"FRONTIER_HOME": str(tmp_path / "lab"), variable: sample}) != base, variable


def test_the_bundle_entry_point_treats_an_unset_option_as_unset() -> None:
    spec = importlib.util.spec_from_file_location("bundle_main", BUNDLE / "server" / "main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    environ = {"FRONTIER_HOME": "/home/me/lab", "FRONTIER_CARGO": "${user_config.cargo_path}",
               "FRONTIER_WORKERS": "4.0", "FRONTIER_BWRAP": " ", "PATH": "/usr/bin"}
    module.clean_environment(environ)
    assert environ == {"FRONTIER_HOME": "/home/me/lab", "FRONTIER_WORKERS": "4", "PATH": "/usr/bin"}


@pytest.mark.slow
def test_the_bundle_builds_and_its_entry_point_serves_in_a_bare_environment(tmp_path: Path) -> None:
    """scripts/build_dist.py builds everything; the .mcpb, unpacked, is started as its manifest says (uv run) with
    a host's bare environment and no cargo: initialize and tools/list work, and a tool says how to install cargo."""
    uv = uv_binary()
    if uv is None:
        pytest.skip("uv is not installed (the dev extra installs it): it is what runs a uv bundle")
    out = tmp_path / "dist"
    built = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_dist.py"), "--out", str(out)],
                           capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stdout + built.stderr
    for name in (f"frontier_mcp-{VERSION}-py3-none-any.whl", f"frontier_mcp-{VERSION}.tar.gz",
                 f"frontier-mcp-{VERSION}.mcpb"):
        assert (out / name).is_file() and name in built.stdout, built.stdout

    installed = tmp_path / "extensions" / "frontier-mcp"
    with zipfile.ZipFile(out / f"frontier-mcp-{VERSION}.mcpb") as bundle:
        bundle.extractall(installed)
    manifest = json.loads((installed / "manifest.json").read_text())
    config = manifest["server"]["mcp_config"]
    # What the host substitutes: its own directory, and the options the user set. The cargo path is left
    # unset (a host may pass the placeholder itself), the CPU budget empty.
    chosen = {"${__dirname}": str(installed), "${user_config.lab_folder}": str(tmp_path / "my-lab"),
              "${user_config.cpu_budget}": ""}

    def substitute(value: str) -> str:
        for placeholder, replacement in chosen.items():
            value = value.replace(placeholder, replacement)
        return value

    assert config["command"] == "uv"
    env = host_env(tmp_path, **download_env(), **{key: substitute(value) for key, value in config["env"].items()})
    params = StdioServerParameters(command=uv, args=[substitute(arg) for arg in config["args"]], env=env, cwd="/")

    async def session() -> tuple[str, str, set[str], str]:
        async with Client(params, mode="legacy", read_timeout_seconds=600) as client:
            info = client.server_info
            assert info is not None
            tools = {tool.name for tool in (await client.list_tools()).tools}
            result = await client.call_tool("history", {})
            assert result.is_error
            return info.name, info.version, tools, " ".join(getattr(c, "text", "") for c in result.content)

    name, version, tools, answer = anyio.run(session)
    assert (name, version) == ("frontier-mcp", VERSION)
    assert tools == {tool["name"] for tool in manifest["tools"]}
    # The unset cargo option did not become a path: the server looked where it looks by default.
    assert "cargo was not found (looked at FRONTIER_CARGO, PATH and ~/.cargo/bin)" in answer, answer
    assert "https://rustup.rs" in answer and "No restart is needed" in answer
    assert (tmp_path / "my-lab" / "state.db").is_file()  # the lab folder the user chose
    # uv made the bundle's environment from the wheel inside it, not from this checkout.
    assert list((installed / ".venv").glob("lib/python3*/site-packages/frontier_mcp/rust_scaffold/Cargo.toml"))
