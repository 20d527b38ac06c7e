"""llama.cpp's own command-line tools, built from the same source as the installed llama-cpp-python.

Benchmarks compare the profiler against llama.cpp's reference tools (``llama-bench``,
``llama-perplexity``). To make that comparison fair the tools are built from the sdist of
exactly the installed llama-cpp-python version (its ``vendor/llama.cpp``), with the options
that package's own CMake build uses (Release, shared libraries, ``GGML_NATIVE`` at its
default ON, ``LLAMA_CURL`` off; every other ggml option left at its default), so both sides
run the same kernels.

Builds are cached per version in ``$PROFILER_CACHE/llamacpp-tools/<version>/`` (default
``~/.cache/profiler/llamacpp-tools/<version>/``): ``bin/`` holds the tools and the shared
libraries they load (RPATH ``$ORIGIN``), ``build.json`` records how they were built. A
second call returns at once; a build takes a few minutes.

    from llamacpp_tools import build_tool
    bench = build_tool("llama-bench")          # Path to the executable

Run as a script to build (or just locate) the default tools:

    .venv/bin/python benchmarks/llamacpp_tools.py [TARGET ...] [--jobs N]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from profiler import paths

PACKAGE = "llama-cpp-python"
DEFAULT_TARGETS = ("llama-bench", "llama-perplexity")


class ToolBuildError(RuntimeError):
    """Downloading, configuring or building the tools failed."""


def _log(text: str) -> None:
    print(f"[llamacpp-tools] {text}", file=sys.stderr, flush=True)


def installed_version() -> str:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ToolBuildError(f"{PACKAGE} is not installed in this interpreter ({sys.executable})") from None


def cache_root() -> Path:
    return paths.cache_dir() / "llamacpp-tools"


def tool_dir(version: str | None = None) -> Path:
    return cache_root() / (version or installed_version())


def tool_path(target: str, version: str | None = None) -> Path:
    return tool_dir(version) / "bin" / target


def cmake_options(source: Path) -> list[str]:
    """``-D`` options matching llama-cpp-python's own build of the same source, plus the tools.

    llama-cpp-python's CMakeLists sets BUILD_SHARED_LIBS and LLAMA_BUILD_COMMON on and
    LLAMA_CURL off, and scikit-build-core builds Release; everything else (GGML_NATIVE,
    GGML_OPENMP, GGML_LLAMAFILE, ...) keeps llama.cpp's default. GGML_NATIVE is stated
    explicitly (its default turns OFF when SOURCE_DATE_EPOCH is set, which would silently
    build slower kernels than the wheel has).
    """
    top = (source / "CMakeLists.txt").read_text(encoding="utf-8", errors="replace")
    options = {
        "CMAKE_BUILD_TYPE": "Release",
        "BUILD_SHARED_LIBS": "ON",
        "GGML_NATIVE": "ON",
        "LLAMA_BUILD_COMMON": "ON",
        "LLAMA_BUILD_TOOLS": "ON",
        "LLAMA_BUILD_TESTS": "OFF",
        "LLAMA_BUILD_EXAMPLES": "OFF",
        "LLAMA_BUILD_SERVER": "OFF",
        # the tools find their shared libraries beside them wherever bin/ is copied
        "CMAKE_BUILD_WITH_INSTALL_RPATH": "ON",
        "CMAKE_INSTALL_RPATH": "$ORIGIN",
    }
    optional = {"LLAMA_CURL": "OFF", "LLAMA_OPENSSL": "OFF", "LLAMA_BUILD_APP": "OFF"}
    options.update({k: v for k, v in optional.items() if k in top})
    return [f"-D{k}={v}" for k, v in options.items()]


def _run(argv: Sequence[str], what: str, cwd: Path | None = None, log_file: Path | None = None) -> None:
    """Run a build step; its output goes to ``log_file`` and its tail into the error."""
    out = log_file.open("a") if log_file else subprocess.DEVNULL
    try:
        if log_file:
            out.write(f"\n$ {' '.join(argv)}\n")
            out.flush()
        done = subprocess.run(list(argv), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    except FileNotFoundError as exc:
        raise ToolBuildError(f"{what}: {exc.filename} not found; install it (e.g. apt-get install cmake g++)") from None
    finally:
        if log_file:
            out.close()
    if done.returncode != 0:
        tail = ""
        if log_file:
            tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-25:])
        raise ToolBuildError(f"{what} failed (exit {done.returncode}); log: {log_file}\n{tail}")


def _download_sdist(version: str, dest: Path, log_file: Path) -> Path:
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            f"{PACKAGE}=={version}", "-d", str(dest)]
    _run(argv, f"pip download {PACKAGE}=={version} (sdist)", log_file=log_file)
    found = sorted(p for p in dest.iterdir() if p.name.endswith((".tar.gz", ".zip")))
    if not found:
        raise ToolBuildError(f"pip download {PACKAGE}=={version} produced no sdist in {dest}")
    return found[0]


def _extract(archive: Path, dest: Path) -> Path:
    if archive.name.endswith(".zip"):
        shutil.unpack_archive(str(archive), str(dest))
    else:
        with tarfile.open(archive) as tf:
            if hasattr(tarfile, "data_filter"):
                tf.extractall(dest, filter="data")
            else:  # pragma: no cover - Pythons without extraction filters
                tf.extractall(dest)  # noqa: S202 - the archive comes from the configured index
    roots = [p for p in dest.iterdir() if p.is_dir()]
    if len(roots) != 1:
        raise ToolBuildError(f"unexpected layout in {archive.name}: {[p.name for p in roots]}")
    source = roots[0] / "vendor" / "llama.cpp"
    if not (source / "CMakeLists.txt").exists():
        raise ToolBuildError(f"{archive.name} has no vendor/llama.cpp/CMakeLists.txt")
    return source


@contextlib.contextmanager
def _locked(directory: Path):
    """One build per version at a time, across processes."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _install(build_bin: Path, targets: Iterable[str], dest_bin: Path) -> None:
    """Copy the tools and every shared library beside them (symlinks kept) into ``dest_bin``."""
    dest_bin.mkdir(parents=True, exist_ok=True)
    libs = [p for p in build_bin.iterdir() if ".so" in p.name or p.suffix == ".dylib"]
    # libraries first, tools last: a tool present in bin/ means its libraries are too
    for src in [*sorted(libs, key=lambda p: p.is_symlink()), *(build_bin / t for t in targets)]:
        tmp = dest_bin / f".{src.name}.tmp"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        if src.is_symlink():
            os.symlink(os.readlink(src), tmp)
        else:
            shutil.copy2(src, tmp)
        os.replace(tmp, dest_bin / src.name)


def _write_record(directory: Path, version: str, options: list[str], targets: list[str], seconds: float) -> None:
    record_path = directory / "build.json"
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        record = {}
    record.update(
        {
            "llama_cpp_python": version,
            "cmake_options": options,
            "targets": sorted(set(record.get("targets", [])) | set(targets)),
            "built": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "build_seconds": round(seconds, 1),
            "python": sys.executable,
        }
    )
    record_path.write_text(json.dumps(record, indent=2) + "\n")


def build_tools(
    targets: Sequence[str] = DEFAULT_TARGETS,
    version: str | None = None,
    jobs: int | None = None,
    log: Callable[[str], None] = _log,
) -> dict[str, Path]:
    """Paths of ``targets`` (llama.cpp CMake target names), building the missing ones first.

    A build also makes every DEFAULT_TARGETS tool not yet cached, so the next benchmark
    that needs one of them does not build again.
    """
    version = version or installed_version()
    directory = tool_dir(version)
    wanted = list(dict.fromkeys(targets))
    paths = {t: tool_path(t, version) for t in wanted}
    if all(p.exists() for p in paths.values()):
        return paths
    with _locked(directory):
        missing = [t for t in dict.fromkeys([*wanted, *DEFAULT_TARGETS]) if not tool_path(t, version).exists()]
        if any(not paths[t].exists() for t in wanted):  # another process may have built them meanwhile
            _build(version, missing, directory, jobs or os.cpu_count() or 1, log)
    for target, path in paths.items():
        if not path.exists():
            raise ToolBuildError(f"the build finished but {path} is missing (is '{target}' a llama.cpp target?)")
    return paths


def _build(version: str, targets: list[str], directory: Path, jobs: int, log: Callable[[str], None]) -> None:
    log_file = directory / "build.log"
    log_file.write_text(f"building {', '.join(targets)} from {PACKAGE} {version}\n")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=".work-", dir=directory) as tmp:
        work = Path(tmp)
        log(f"downloading the {PACKAGE} {version} sdist with pip (your pip configuration applies)")
        archive = _download_sdist(version, work / "sdist", log_file)
        source = _extract(archive, work / "src")
        build = work / "build"
        options = cmake_options(source)
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        log(f"configuring llama.cpp ({' '.join(options[:4])} ...); log: {log_file}")
        _run(["cmake", "-S", str(source), "-B", str(build), *generator, *options], "cmake configure", log_file=log_file)
        log(f"building {', '.join(targets)} with -j {jobs} (a few minutes)")
        _run(["cmake", "--build", str(build), "--config", "Release", "-j", str(jobs), "--target", *targets],
             "cmake build", log_file=log_file)
        _install(build / "bin", targets, directory / "bin")
        _write_record(directory, version, options, targets, time.monotonic() - start)
    log(f"built {', '.join(targets)} in {time.monotonic() - start:.0f} s -> {directory / 'bin'}")


def build_tool(target: str, version: str | None = None, jobs: int | None = None) -> Path:
    """Path of one llama.cpp tool (e.g. ``llama-bench``) for the installed llama-cpp-python."""
    return build_tools([target], version=version, jobs=jobs)[target]


def tool_system_info(version: str | None = None) -> str:
    """llama.cpp's feature line (``llama_print_system_info``) of the cached build.

    Read in a child process so two copies of ggml never share one process; compare it
    with llama-cpp-python's to check that both sides were built with the same CPU features.
    """
    lib = tool_dir(version) / "bin" / "libllama.so"
    code = (
        "import ctypes, sys\n"
        "lib = ctypes.CDLL(sys.argv[1])\n"
        "lib.llama_print_system_info.restype = ctypes.c_char_p\n"
        "print(lib.llama_print_system_info().decode(errors='replace').strip())\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(lib)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ToolBuildError(f"cannot read system info from {lib}: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", default=list(DEFAULT_TARGETS), help="llama.cpp targets to build")
    parser.add_argument("--jobs", "-j", type=int, default=None, help="parallel build jobs (default: CPU count)")
    args = parser.parse_args(argv)
    try:
        for target, path in build_tools(args.targets, jobs=args.jobs).items():
            print(f"{target}: {path}")
    except ToolBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
