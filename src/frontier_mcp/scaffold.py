"""The lab on disk, and how a model's source becomes a candidate crate.

    <home>/state.db
    <home>/workspace/        copy of rust_scaffold/ (replaced when the shipped scaffold changes)
    <home>/candidates/<name>/ one crate per experiment: Cargo.toml, Cargo.lock, src/{main,optimizer}.rs
    <home>/target/           one cargo target dir shared by every candidate (prebuilt harness)
    <home>/cargo-home/       an empty CARGO_HOME the server controls (no user cargo config)
    <home>/cache/            baseline results keyed by harness version and plan
    <home>/harness/          the lab's trusted harness binary, copied out of target/ by its hash
    <home>/secret.key        the secret problem instances are drawn from (never mounted in a sandbox)

Each candidate is its own cargo workspace root that depends on `frontier-core` by path (nothing
else: its binary holds the optimizer and the pipe protocol, not the problems), so cargo never
loads the other candidates, and the shared target dir reuses the prebuilt core.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import uuid
from importlib import resources
from pathlib import Path

from .archive import sha256_text

CANDIDATE_PREFIX = "cand_"
WARMUP_NAME = "example"
SCAFFOLD_STAMP = ".scaffold-sha256"


def package_root() -> Path:
    return Path(str(resources.files("frontier_mcp")))


def shipped_dir(name: str) -> Path:
    """`rust_scaffold` or `prompts`: inside the wheel, else at the checkout's root."""
    inside = package_root() / name
    if inside.is_dir():
        return inside
    checkout = package_root().parents[1] / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"{name}/ is missing from this installation of frontier-mcp")


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "target" not in path.relative_to(root).parts:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


class Lab:
    """Paths of one lab folder, and the crate files the server writes there."""

    def __init__(self, home: Path):
        self.home = home
        self.workspace = home / "workspace"
        self.candidates = home / "candidates"
        self.target = home / "target"
        self.cargo_home = home / "cargo-home"
        self.cache = home / "cache"
        self.harness_dir = home / "harness"

    def ensure_dirs(self) -> None:
        for path in (self.home, self.candidates, self.target, self.cargo_home, self.cache, self.harness_dir):
            path.mkdir(parents=True, exist_ok=True)

    # -- the trusted harness and the instance secret --------------------------------------------

    def built_harness(self) -> Path:
        """Where cargo leaves the harness (a directory every build sandbox can write)."""
        return self.target / "release" / "frontier-bench"

    def install_harness(self) -> Path:
        """Copy the freshly built harness out of target/ under its hash, and point to it."""
        data = self.built_harness().read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        final = self.harness_dir / f"frontier-bench-{digest[:16]}"
        if not final.exists():
            tmp = final.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(data)
            tmp.chmod(0o555)
            tmp.replace(final)
        (self.harness_dir / "current").write_text(f"{final.name} {digest}\n")
        return final

    def harness(self) -> Path | None:
        """The installed harness, if its file still has the hash it was installed with."""
        try:
            name, digest = (self.harness_dir / "current").read_text().split()
            path = self.harness_dir / name
            if hashlib.sha256(path.read_bytes()).hexdigest() == digest:
                return path
        except (OSError, ValueError):
            pass
        return None

    def secret(self) -> bytes:
        """32 random bytes, made once per lab: problem instances are drawn from them."""
        path = self.home / "secret.key"
        try:
            data = path.read_bytes()
            if len(data) == 32:
                return data
        except FileNotFoundError:
            pass
        data = secrets.token_bytes(32)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)  # the first writer wins; a second server reads the same secret
        except FileExistsError:
            data = path.read_bytes()
        finally:
            tmp.unlink()
        return data

    def install_scaffold(self) -> bool:
        """Copy the shipped scaffold into the lab if it is missing or changed; True if copied."""
        self.ensure_dirs()
        source = shipped_dir("rust_scaffold")
        digest = _tree_digest(source)
        stamp = self.workspace / SCAFFOLD_STAMP
        if stamp.exists() and stamp.read_text().strip() == digest:
            return False
        if self.workspace.exists():
            shutil.rmtree(self.workspace)
        shutil.copytree(source, self.workspace, ignore=shutil.ignore_patterns("target", "__pycache__"))
        stamp.write_text(digest + "\n")
        return True

    def scaffold_digest(self) -> str:
        stamp = self.workspace / SCAFFOLD_STAMP
        return stamp.read_text().strip() if stamp.exists() else ""

    # -- candidate crates ---------------------------------------------------------------------

    def crate_dir(self, name: str) -> Path:
        return self.candidates / name

    def package_name(self, name: str) -> str:
        return CANDIDATE_PREFIX + name

    def binary(self, name: str) -> Path:
        return self.target / "release" / self.package_name(name)

    def manifest(self, name: str) -> str:
        """The server's own manifest: no build script, no dependencies beyond the scaffold's."""
        import tomlkit  # on first use: 10-30 ms the server's path to `initialize` does not need

        doc = tomlkit.document()
        doc.add(tomlkit.comment("Written by frontier-mcp; edits are overwritten."))
        package = tomlkit.table()
        package.update({"name": self.package_name(name), "version": "0.1.0", "edition": "2021",
                        "build": False, "publish": False, "autobins": False, "autoexamples": False,
                        "autotests": False, "autobenches": False})
        doc["package"] = package
        binary = tomlkit.table()
        binary.update({"name": self.package_name(name), "path": "src/main.rs", "test": False, "bench": False})
        doc["bin"] = tomlkit.aot()
        doc["bin"].append(binary)
        deps = tomlkit.table()
        core = tomlkit.inline_table()
        core["path"] = str(self.workspace / "crates" / "core")
        deps["frontier-core"] = core
        doc["dependencies"] = deps
        doc["workspace"] = tomlkit.table()
        release = tomlkit.table()
        release.update({"opt-level": 3, "debug": False, "incremental": False, "codegen-units": 16,
                        "lto": False, "panic": "unwind"})
        profile = tomlkit.table()
        profile["release"] = release
        doc["profile"] = profile
        return tomlkit.dumps(doc)

    def lockfile(self, name: str) -> str | None:
        """The warm-up crate's Cargo.lock with the package renamed, so cargo can run --frozen."""
        template = self.crate_dir(WARMUP_NAME) / "Cargo.lock"
        if not template.exists():
            return None
        import tomlkit

        lock = tomlkit.parse(template.read_text())
        old = self.package_name(WARMUP_NAME)
        for package in lock["package"]:  # type: ignore[union-attr]
            if package["name"] == old:
                package["name"] = self.package_name(name)
        packages = sorted(lock["package"], key=lambda p: str(p["name"]))  # type: ignore[union-attr]
        table = tomlkit.aot()
        for package in packages:
            table.append(package)
        lock["package"] = table
        return tomlkit.dumps(lock)

    def write_crate(self, name: str, source: str) -> Path:
        """Write the crate atomically: a half-written crate never appears under its name.

        The crate is derived from the archive (which holds the source), so an existing folder of
        that name is replaced. Two servers on one lab may write the same name at once: each
        stages in a folder of its own, and the last rename wins (compile re-derives the crate
        from the archive if what it finds is not the archived source).
        """
        final = self.crate_dir(name)
        staging = self.candidates / f".staging-{name}-{uuid.uuid4().hex}"
        (staging / "src").mkdir(parents=True)
        try:
            (staging / "Cargo.toml").write_text(self.manifest(name))
            lock = self.lockfile(name)
            if lock is not None:
                (staging / "Cargo.lock").write_text(lock)
            template = self.workspace / "template"
            (staging / "src" / "main.rs").write_text((template / "main.rs").read_text())
            (staging / "src" / "optimizer.rs").write_text(source)
            for _ in range(10):
                if final.exists():
                    # Move the old crate aside first: renaming onto a non-empty folder fails.
                    aside = self.candidates / f".old-{name}-{uuid.uuid4().hex}"
                    with contextlib.suppress(FileNotFoundError):
                        final.rename(aside)
                        shutil.rmtree(aside, ignore_errors=True)
                try:
                    staging.rename(final)
                    return final
                except OSError:
                    continue  # another writer put its crate there in between: move it aside again
            raise OSError(f"could not place the crate {name!r} in {self.candidates}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def remove_crate(self, name: str) -> None:
        shutil.rmtree(self.crate_dir(name), ignore_errors=True)

    def example_source(self) -> str:
        return (shipped_dir("rust_scaffold") / "template" / "optimizer.rs").read_text()

    def source_sha(self, name: str) -> str:
        return sha256_text((self.crate_dir(name) / "src" / "optimizer.rs").read_text())
