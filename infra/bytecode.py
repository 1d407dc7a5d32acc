"""Precompiled bytecode for the deployment zip.

Lambda unpacks the zip into a read-only /var/task, so Python cannot write __pycache__ there and
would compile every imported module again on every cold start (boto3, botocore, pynamodb,
cryptography's Python half: a few hundred milliseconds). So the package ships the bytecode:

- next to the sources, in __pycache__/<name>.cpython-311.pyc (PEP 3147), so that tracebacks still
  show source lines and code that reads its own .py files keeps working;
- hash-based and unchecked (PEP 552): a timestamp pyc would be compared with the .py file's mtime
  as unzipped, which a zip keeps only to 2 s in local time, so Python could judge it stale and
  recompile anyway. An unchecked pyc is used as is; the package is immutable, so it cannot go stale;
- compiled by the interpreter that packages, whose version chalice also chose as the Lambda
  runtime: the pyc's magic number must be the runtime's, or Python silently ignores the file.
  `check_interpreter` refuses to compile for any other runtime.

The pycs are appended to chalice's zip (mode "a") rather than rewriting it: rewriting the 4,000
members chalice already compressed doubles the packaging time for nothing.
"""
from __future__ import annotations

import compileall
import importlib.util
import py_compile
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

LAMBDA_TASK_ROOT = "/var/task"
# Our own code must compile; a third-party file that does not (a py2-only example, a template
# named .py) is only reported: it cannot be imported on Lambda either way.
OWN_CODE = ("app.py", "chalicelib/")


class BytecodeError(RuntimeError):
    pass


@dataclass(frozen=True)
class CompileReport:
    compiled: int
    failed: tuple[str, ...]  # third-party sources that did not compile


def interpreter_runtime() -> str:
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def check_interpreter(runtime: str) -> None:
    if runtime != interpreter_runtime():
        raise BytecodeError(
            f"the template's Lambda runtime is {runtime} but this is {interpreter_runtime()}: its bytecode "
            f"would be ignored there. Package with the runtime's Python (see infra/README.md)."
        )


def pyc_name(source: str) -> str:
    """Zip path of a source's bytecode: "a/b.py" -> "a/__pycache__/b.cpython-311.pyc"."""
    return Path(importlib.util.cache_from_source(source, optimization="")).as_posix()


def _sources(archive: zipfile.ZipFile) -> list[str]:
    names = archive.namelist()
    if any(name.endswith(".pyc") for name in names):
        # Appending would then write a second member under the same name.
        raise BytecodeError("the zip already holds .pyc files: package from a clean project copy")
    return [name for name in names if name.endswith(".py")]


def _own_failures(failed: list[str], workdir: Path) -> list[str]:
    messages = []
    for source in failed:
        if source.startswith(OWN_CODE):
            try:
                py_compile.compile(str(workdir / source), doraise=True)
            except py_compile.PyCompileError as error:
                messages.append(str(error))
    return messages


def precompile(zip_path: Path, runtime: str, workdir: Path) -> CompileReport:
    """Adds unchecked-hash bytecode for every .py in the zip. `workdir`: an empty scratch directory."""
    check_interpreter(runtime)
    with zipfile.ZipFile(zip_path) as archive:
        sources = _sources(archive)
        archive.extractall(workdir, members=sources)
    compileall.compile_dir(
        workdir, quiet=2, ddir=LAMBDA_TASK_ROOT, workers=0, optimize=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    compiled = [s for s in sources if (workdir / pyc_name(s)).exists()]
    failed = sorted(set(sources) - set(compiled))
    own = _own_failures(failed, workdir)
    if own:
        raise BytecodeError("our code does not compile:\n" + "\n".join(own))
    # Level 1: nearly the size of level 6 for bytecode, in a fraction of the time.
    with zipfile.ZipFile(zip_path, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for source in compiled:
            archive.write(workdir / pyc_name(source), pyc_name(source))
    return CompileReport(compiled=len(compiled), failed=tuple(failed))
