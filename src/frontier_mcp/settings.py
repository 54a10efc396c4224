"""One frozen Settings object, built from flags, then FRONTIER_* environment, then frontier.toml.

Hosts start MCP servers in `/` with a bare environment, so nothing here may depend on the
current directory: every path is resolved to an absolute one.
"""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_PREFIX = "FRONTIER_"


def default_home() -> Path:
    """The platform data dir: `$XDG_DATA_HOME/frontier-mcp`, else `~/.local/share/frontier-mcp`."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return (base / "frontier-mcp").absolute()


def find_cargo(explicit: str | None = None) -> Path | None:
    """cargo through the setting, then PATH, then ~/.cargo/bin (hosts often give a bare PATH)."""
    if explicit:
        path = Path(explicit).expanduser()
        return path.absolute() if path.exists() else None
    found = shutil.which("cargo")
    if found:
        return Path(found).absolute()
    fallback = Path.home() / ".cargo" / "bin" / "cargo"
    return fallback if fallback.exists() else None


class Limits(BaseModel):
    """Resource limits applied to every sandboxed compile and run."""

    model_config = ConfigDict(frozen=True)

    compile_seconds: float = Field(120.0, gt=0, description="Wall-clock limit of one cargo build.")
    run_seconds: float = Field(120.0, gt=0, description="Wall-clock limit of one harness process.")
    cpu_seconds: int = Field(600, gt=0, description="CPU-time limit (RLIMIT_CPU) of a sandboxed process.")
    memory_mb: int = Field(4096, gt=0, description="Address-space limit (RLIMIT_AS) in MiB.")
    processes: int = Field(256, gt=0, description="Process/thread limit inside the sandbox.")
    file_size_mb: int = Field(512, gt=0, description="Largest file a sandboxed process may write, MiB.")
    tmpfs_mb: int = Field(256, gt=0, description="Size of the sandbox's private /tmp, MiB.")
    output_kb: int = Field(4096, gt=0, description="Captured stdout/stderr per process, KiB; the rest is cut.")


class Settings(BaseModel):
    """Everything the server needs to know, frozen once at start-up."""

    model_config = ConfigDict(frozen=True)

    home: Path = Field(default_factory=default_home, description="The lab folder holding state.db.")
    cargo: str | None = Field(None, description="Path to cargo; default: PATH, then ~/.cargo/bin.")
    sandbox: bool = Field(True, description="Run cargo and candidates under bubblewrap. Off = unsafe.")
    bwrap: str | None = Field(None, description="Path to bwrap; default: PATH.")
    wait_seconds: float = Field(
        40.0, ge=0, le=600, description="How long a tool call waits on a job before returning its id."
    )
    workers: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1, le=64)
    max_source_bytes: int = Field(64 * 1024, gt=0)
    native_cpu: bool = Field(True, description="Compile candidates with -C target-cpu=native.")
    limits: Limits = Field(default_factory=Limits)
    runner: Literal["local", "ray"] = Field(
        "local", description="Where harness processes run: local processes, or Ray tasks (needs frontier-mcp[ray]).")
    ray_address: str | None = Field(None, description="Ray cluster to join (auto, host:port, ray://host:10001); "
                                    "default: RAY_ADDRESS, else a running local Ray, else a new one.")
    ray_runtime_env: dict[str, Any] | None = Field(
        None, description="Ray runtime environment of the server's Ray job (JSON in FRONTIER_RAY_RUNTIME_ENV), "
                          'e.g. {"pip": ["frontier-mcp[ray]==0.1.0"]} to install the package on nodes that lack it.')
    fdr_alpha: float = Field(0.05, gt=0, lt=1, description="The false discovery rate the lab's recorded wins are "
                                                           "held to (online, LORD++): the archive-wide alpha.")

    @field_validator("home", mode="before")
    @classmethod
    def _absolute_home(cls, value: Any) -> Path:
        return Path(value).expanduser().absolute()

    @field_validator("ray_runtime_env", mode="before")
    @classmethod
    def _json_runtime_env(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @property
    def db_path(self) -> Path:
        return self.home / "state.db"

    def cargo_path(self) -> Path | None:
        return find_cargo(self.cargo)


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    keys = {"HOME": "home", "CARGO": "cargo", "BWRAP": "bwrap", "WAIT_SECONDS": "wait_seconds",
            "WORKERS": "workers", "NATIVE_CPU": "native_cpu", "RUNNER": "runner", "RAY_ADDRESS": "ray_address",
            "RAY_RUNTIME_ENV": "ray_runtime_env",
            "FDR_ALPHA": "fdr_alpha"}
    for env_key, field in keys.items():
        if (value := environ.get(ENV_PREFIX + env_key)) not in (None, ""):
            out[field] = value
    # Limits: FRONTIER_COMPILE_SECONDS, FRONTIER_RUN_SECONDS, FRONTIER_MEMORY_MB, FRONTIER_PROCESSES, ...
    limits = {name: value for name in Limits.model_fields
              if (value := environ.get(ENV_PREFIX + name.upper())) not in (None, "")}
    if limits:
        out["limits"] = limits
    sandbox = environ.get(ENV_PREFIX + "SANDBOX")
    if sandbox:
        # Turning the sandbox off must be a deliberate, explicit word.
        out["sandbox"] = sandbox.strip().lower() not in {"off", "0", "false", "no"}
    return out


def load_settings(home: str | Path | None = None, environ: dict[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Flags win over FRONTIER_* variables, which win over `<home>/frontier.toml`."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = _env_overrides(env)
    if home is not None:
        values["home"] = home
    resolved_home = Path(values.get("home") or default_home()).expanduser().absolute()
    config_file = resolved_home / "frontier.toml"
    file_values: dict[str, Any] = {}
    if config_file.exists():
        file_values = tomllib.loads(config_file.read_text())
    merged = {**file_values, **values, **{k: v for k, v in overrides.items() if v is not None}}
    if isinstance(file_values.get("limits"), dict) and isinstance(values.get("limits"), dict):
        merged["limits"] = {**file_values["limits"], **values["limits"]}
    merged["home"] = resolved_home
    return Settings(**merged)
