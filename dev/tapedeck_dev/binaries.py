"""Find or build etcd, kube-apiserver, kube-controller-manager, kubectl, helm and gitops-health.

`go install k8s.io/kubernetes/cmd/...@vX` is refused because k8s.io/kubernetes' go.mod
replaces its staging modules with local paths. A small tools module that requires
k8s.io/kubernetes and maps every staging module to its published `v0.X.Y` tag builds them
from the Go module proxy instead. Builds are cached under `~/.cache/tapedeck/<version>/`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CLI_UTILS_VERSION",
    "ETCD_VERSION",
    "HELM_VERSION",
    "KUBERNETES_VERSION",
    "Binaries",
    "BinaryNotFound",
    "cache_root",
    "ensure_binaries",
    "ensure_gitops_health",
    "ensure_helm",
    "find_binaries",
    "run_go",
    "staging_replaces",
]

KUBERNETES_VERSION = "v1.34.3"
ETCD_VERSION = "v3.6.13"
HELM_VERSION = "v3.22.0"
# sigs.k8s.io/cli-utils, whose kstatus library is how Flux and kpt read health.
CLI_UTILS_VERSION = "v0.37.2"
GITOPS_HEALTH_SOURCE = Path(__file__).resolve().parent.parent / "gitops-health"

KUBE_TOOLS = ("kube-apiserver", "kube-controller-manager", "kubectl")
ALL_TOOLS = ("etcd", *KUBE_TOOLS)


class BinaryNotFound(RuntimeError):
    """A control-plane binary is neither on PATH/KUBEBUILDER_ASSETS nor buildable."""


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path


def cache_root() -> Path:
    return Path(os.environ.get("TAPEDECK_CACHE", Path.home() / ".cache" / "tapedeck"))


def _from_dirs(dirs: list[Path]) -> Binaries | None:
    found: dict[str, Path] = {}
    for tool in ALL_TOOLS:
        for d in dirs:
            candidate = d / tool
            if candidate.is_file() and os.access(candidate, os.X_OK):
                found[tool] = candidate
                break
    if len(found) != len(ALL_TOOLS):
        return None
    return Binaries(
        etcd=found["etcd"],
        kube_apiserver=found["kube-apiserver"],
        kube_controller_manager=found["kube-controller-manager"],
        kubectl=found["kubectl"],
    )


def find_binaries() -> Binaries | None:
    """Binaries from KUBEBUILDER_ASSETS, the build cache, or PATH, in that order."""
    dirs: list[Path] = []
    if assets := os.environ.get("KUBEBUILDER_ASSETS"):
        dirs.append(Path(assets))
    dirs.append(_bin_dir())
    dirs.extend(Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p)
    return _from_dirs(dirs)


def _bin_dir() -> Path:
    return cache_root() / f"kubernetes-{KUBERNETES_VERSION}-etcd-{ETCD_VERSION}" / "bin"


def staging_replaces(kubernetes_gomod: str, kubernetes_version: str) -> list[str]:
    """`go mod edit -replace` arguments mapping each `./staging/` module to its v0.X.Y tag."""
    staging_version = "v0" + kubernetes_version[2:]
    modules = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", kubernetes_gomod, re.M)
    if not modules:
        raise BinaryNotFound("k8s.io/kubernetes go.mod lists no staging modules to replace")
    return [f"{m}={m}@{staging_version}" for m in sorted(set(modules))]


def run_go(args: list[str], cwd: Path, log: Path, **extra_env: str) -> None:
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod") | extra_env
    with log.open("a") as out:
        out.write(f"$ go {' '.join(args)}\n")
        out.flush()
        proc = subprocess.run(["go", *args], cwd=cwd, env=env, stdout=out, stderr=out)
    if proc.returncode != 0:
        raise BinaryNotFound(f"`go {' '.join(args[:2])}` failed in {cwd}; see {log}")


def _kubernetes_gomod(workdir: Path, log: Path) -> str:
    run_go(["mod", "download", f"k8s.io/kubernetes@{KUBERNETES_VERSION}"], workdir, log)
    gomodcache = subprocess.run(
        ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True
    ).stdout.strip()
    path = Path(gomodcache) / "cache/download/k8s.io/kubernetes/@v" / f"{KUBERNETES_VERSION}.mod"
    return path.read_text()


def _version_ldflags() -> str:
    major, minor = KUBERNETES_VERSION[1:].split(".")[:2]
    pairs = {
        "k8s.io/component-base/version.gitVersion": KUBERNETES_VERSION,
        "k8s.io/component-base/version.gitMajor": major,
        "k8s.io/component-base/version.gitMinor": minor,
        "k8s.io/component-base/version.gitTreeState": "clean",
        "k8s.io/client-go/pkg/version.gitVersion": KUBERNETES_VERSION,
        "k8s.io/client-go/pkg/version.gitMajor": major,
        "k8s.io/client-go/pkg/version.gitMinor": minor,
    }
    return "-s -w " + " ".join(f"-X {k}={v}" for k, v in pairs.items())


def _build_kubernetes(workdir: Path, out: Path, log: Path) -> None:
    mod = workdir / "kube"
    mod.mkdir()
    (mod / "go.mod").write_text("module tapedeck.invalid/tools/kube\n\ngo 1.24.0\n")
    (mod / "tools.go").write_text(
        "//go:build tools\n\npackage tools\n\nimport (\n"
        + "".join(f'\t_ "k8s.io/kubernetes/cmd/{t}"\n' for t in KUBE_TOOLS)
        + ")\n"
    )
    replaces = staging_replaces(_kubernetes_gomod(mod, log), KUBERNETES_VERSION)
    run_go(["mod", "edit", *(f"-replace={r}" for r in replaces)], mod, log)
    run_go(["get", f"k8s.io/kubernetes@{KUBERNETES_VERSION}"], mod, log)
    run_go(["mod", "tidy"], mod, log)
    run_go(
        [
            "build",
            "-trimpath",
            "-o",
            str(out),
            "-ldflags",
            _version_ldflags(),
            *(f"k8s.io/kubernetes/cmd/{t}" for t in KUBE_TOOLS),
        ],
        mod,
        log,
    )


def _build_etcd(workdir: Path, out: Path, log: Path) -> None:
    mod = workdir / "etcd"
    mod.mkdir()
    (mod / "go.mod").write_text("module tapedeck.invalid/tools/etcd\n\ngo 1.24.0\n")
    (mod / "tools.go").write_text(
        '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n'
    )
    run_go(["get", f"go.etcd.io/etcd/server/v3@{ETCD_VERSION}"], mod, log)
    run_go(["mod", "tidy"], mod, log)
    run_go(
        [
            "build",
            "-trimpath",
            "-ldflags",
            "-s -w",
            "-o",
            str(out / "etcd"),
            "go.etcd.io/etcd/server/v3",
        ],
        mod,
        log,
    )


def ensure_binaries() -> Binaries:
    """Return usable binaries, building the missing ones into the cache (slow the first time)."""
    if found := find_binaries():
        return found
    if shutil.which("go") is None:
        raise BinaryNotFound(
            "etcd/kube-apiserver/kube-controller-manager/kubectl not found and `go` is not "
            "installed: set KUBEBUILDER_ASSETS to a directory holding them, or install Go"
        )
    out = _bin_dir()
    out.mkdir(parents=True, exist_ok=True)
    log = out.parent / "build.log"
    with tempfile.TemporaryDirectory(prefix="tapedeck-build-") as tmp:
        if not (out / "etcd").exists():
            _build_etcd(Path(tmp), out, log)
        if not all((out / t).exists() for t in KUBE_TOOLS):
            _build_kubernetes(Path(tmp), out, log)
    found = _from_dirs([out])
    if found is None:
        raise BinaryNotFound(f"build finished but binaries are missing from {out}; see {log}")
    return found


def ensure_helm() -> Path:
    """helm from the cache or PATH, else built once from the Go module proxy into the cache
    (helm's go.mod has no local replaces, so `go install module@version` builds it)."""
    cached = cache_root() / f"helm-{HELM_VERSION}" / "bin" / "helm"
    if cached.is_file():
        return cached
    if on_path := shutil.which("helm"):
        return Path(on_path)
    if shutil.which("go") is None:
        raise BinaryNotFound("helm is not on PATH and `go` is not installed to build it")
    cached.parent.mkdir(parents=True, exist_ok=True)
    ldflags = f"-s -w -X helm.sh/helm/v3/internal/version.version={HELM_VERSION}"
    with tempfile.TemporaryDirectory(prefix="tapedeck-build-") as tmp:
        run_go(
            [
                "install",
                "-trimpath",
                "-ldflags",
                ldflags,
                f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}",
            ],
            Path(tmp),
            cached.parent.parent / "build.log",
            GOBIN=str(cached.parent),
            GOFLAGS="",  # `-mod=mod` is refused outside a module
        )
    if not cached.is_file():
        raise BinaryNotFound(f"helm build finished but {cached} is missing")
    return cached


def ensure_gitops_health() -> Path:
    """The `dev/gitops-health` program (kstatus and Argo CD health of objects on stdin), built
    once from the Go module proxy into the cache, keyed by kstatus' version and the source."""
    source = hashlib.sha256()
    for name in ("main.go", "go.mod", "go.sum"):
        source.update((GITOPS_HEALTH_SOURCE / name).read_bytes())
    cached = (
        cache_root()
        / f"gitops-health-{CLI_UTILS_VERSION}-{source.hexdigest()[:12]}"
        / "gitops-health"
    )
    if cached.is_file():
        return cached
    if shutil.which("go") is None:
        raise BinaryNotFound("`go` is not installed to build the gitops-health checker")
    cached.parent.mkdir(parents=True, exist_ok=True)
    run_go(
        ["build", "-trimpath", "-o", str(cached), "."],
        GITOPS_HEALTH_SOURCE,
        cached.parent / "build.log",
        GOFLAGS="-mod=readonly",  # go.sum is committed: the build must not rewrite it
    )
    return cached
