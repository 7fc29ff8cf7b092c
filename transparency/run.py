#!/usr/bin/env python3
"""Run Django's own ``dispatch`` and ``signals`` test suites with signaltrace on.

Usage::

    python3 transparency/run.py DJANGO_SPEC PYTHON [options] [-- runtests args]
    python3 transparency/run.py "django>=6.1,<6.2" 3.13
    python3 transparency/run.py "django>=6.1,<6.2" /path/to/python3.13

PYTHON is a version resolved through pyenv (``3.13``, ``3.12.1``) or the path
of a Python executable (a venv's python is followed to its base interpreter).

Steps (everything cached under ``<repo>/.cache/transparency/``, reused when
present, so a second run does no network work):

1. a venv ``venvs/<django-spec>-py<version>`` made with that Python, holding
   ``DJANGO_SPEC`` and this repository (editable, so the working tree is what
   gets tested); re-made when the spec, the interpreter or ``pyproject.toml``
   change;
2. the source distribution of exactly the Django version installed in that
   venv (``pip download --no-binary :all: --no-deps django==X.Y.Z``), unpacked
   under ``django-src/``;
3. ``tests/runtests.py --parallel=1 dispatch signals`` run twice from the
   unpacked ``tests/`` folder: a baseline without signaltrace, then with
   ``sitecustomize_hook/`` on PYTHONPATH and ``SIGNALTRACE_TRANSPARENCY=1``, so
   signaltrace is installed and capturing from ``django.setup()`` to exit.

Exit status: 0 when both runs pass, ran the same number of tests, and the
traced run printed the hook's "recorded N dispatches, M receiver calls" line
with M > 0; 1 when the traced run fails (or the hook's proof is missing);
2 when only the baseline fails (the environment is broken: no verdict);
4 on a set-up error (venv, pip, download).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HOOK_DIR = HERE / "sitecustomize_hook"
CACHE = REPO / ".cache" / "transparency"
DEFAULT_SUITES = ("dispatch", "signals")
#: Packages from Django's tests/requirements/py3.txt that the suites run here
#: need on top of Django's own dependencies. ``dispatch`` and ``signals``
#: need none (runtests.py imports only Django), so this stays empty.
EXTRA_TEST_REQUIREMENTS: tuple[str, ...] = ()
#: Bump to force every cached venv to be rebuilt.
VENV_LAYOUT = "1"

EXIT_TRACED_FAILED = 1
EXIT_BASELINE_FAILED = 2
EXIT_SETUP_FAILED = 4


class SetupError(Exception):
    pass


def log(message: str) -> None:
    print(f"[transparency] {message}", flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    log("$ " + " ".join(str(c) for c in cmd))
    result = subprocess.run(cmd, **kwargs)
    if result.returncode != 0:
        raise SetupError(f"command failed with exit status {result.returncode}: {cmd}")
    return result


def slug(text: str) -> str:
    text = text.lower().replace(">=", "ge").replace("<=", "le").replace("==", "eq")
    text = text.replace(">", "gt").replace("<", "lt").replace("~=", "compat")
    return re.sub(r"[^a-z0-9.]+", "_", text).strip("_")


# -- interpreter --------------------------------------------------------------


_PROBE = (
    "import os, platform, sys; print(platform.python_version()); "
    "print(os.path.realpath(getattr(sys, '_base_executable', sys.executable)))"
)


def _probe(exe: str | Path) -> tuple[Path, str]:
    """``(real base interpreter, full version)`` of a Python executable."""
    out = subprocess.run([str(exe), "-c", _PROBE], capture_output=True, text=True)
    if out.returncode != 0:
        raise SetupError(f"{exe} does not run: {out.stderr.strip()}")
    version, base = out.stdout.split()
    return Path(base), version


def find_python(spec: str) -> tuple[Path, str]:
    """The base interpreter for ``spec`` and its full version.

    ``spec`` is a path to a Python executable (tox passes ``{env_python}``;
    a venv's python is followed to the interpreter it was made from), or a
    version (``3.11``, ``3.12.1``): the newest pyenv version equal to it or
    starting with it, else ``python<spec>`` on PATH.
    """
    if os.sep in spec or Path(spec).is_file():
        if not Path(spec).exists():
            raise SetupError(f"no Python executable at {spec}")
        return _probe(spec)
    pyenv = shutil.which("pyenv")
    if pyenv:
        out = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True).stdout
        candidates = [
            v
            for v in (line.strip() for line in out.splitlines())
            if re.fullmatch(r"\d+\.\d+\.\d+", v) and (v == spec or v.startswith(spec + "."))
        ]
        if candidates:
            best = max(candidates, key=lambda v: tuple(int(p) for p in v.split(".")))
            prefix = subprocess.run(
                [pyenv, "prefix", best], capture_output=True, text=True
            ).stdout.strip()
            exe = Path(prefix) / "bin" / "python3"
            if prefix and exe.exists():
                return _probe(exe)
    exe_name = shutil.which(f"python{spec}")
    if exe_name:
        return _probe(exe_name)
    raise SetupError(f"no Python {spec} found (pyenv versions --bare, python{spec} on PATH)")


# -- venv ---------------------------------------------------------------------


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(spec: str, base_python: Path, py_full: str) -> Path:
    venv = CACHE / "venvs" / f"{slug(spec)}-py{py_full}"
    stamp_file = venv / ".transparency-stamp"
    stamp = hashlib.sha256(
        "\n".join(
            [
                VENV_LAYOUT,
                spec,
                str(base_python),
                py_full,
                (REPO / "pyproject.toml").read_text(),
                *EXTRA_TEST_REQUIREMENTS,
            ]
        ).encode()
    ).hexdigest()
    if (
        stamp_file.exists()
        and stamp_file.read_text().strip() == stamp
        and venv_python(venv).exists()
    ):
        log(f"reusing venv {venv}")
        return venv
    log(f"creating venv {venv} with Python {py_full}")
    venv.parent.mkdir(parents=True, exist_ok=True)
    stamp_file.unlink(missing_ok=True)
    run([str(base_python), "-m", "venv", "--clear", str(venv)])
    pip = [str(venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run([*pip, spec, "-e", str(REPO), *EXTRA_TEST_REQUIREMENTS])
    stamp_file.write_text(stamp + "\n")
    return venv


def installed_django_version(venv: Path) -> str:
    out = subprocess.run(
        [str(venv_python(venv)), "-c", "import django; print(django.__version__)"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SetupError(f"django is not importable in {venv}: {out.stderr.strip()}")
    return out.stdout.strip()


# -- Django's source distribution ----------------------------------------------


def ensure_sdist(venv: Path, version: str) -> Path:
    """Unpacked ``django-<version>/`` (with ``tests/``), downloaded once."""
    src_root = CACHE / "django-src"
    target = src_root / f"django-{version}"
    if (target / "tests" / "runtests.py").exists():
        log(f"reusing Django {version} source at {target}")
        return target
    sdists = CACHE / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    archive = _find_sdist(sdists, version)
    if archive is None:
        log(f"downloading the source distribution of Django {version}")
        pip = [
            str(venv_python(venv)),
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
        ]
        try:
            run(
                [*pip, "--no-binary", ":all:", "--no-deps", f"django=={version}", "-d", str(sdists)]
            )
        except SetupError:
            # --no-binary :all: also applies to the build backend used to read
            # the sdist's metadata; build only Django from source then.
            run(
                [
                    *pip,
                    "--no-binary",
                    "django",
                    "--no-deps",
                    f"django=={version}",
                    "-d",
                    str(sdists),
                ]
            )
        archive = _find_sdist(sdists, version)
        if archive is None:
            raise SetupError(f"pip download left no django-{version} sdist in {sdists}")
    log(f"unpacking {archive.name}")
    src_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=src_root) as tmp:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # pragma: no cover - Python < 3.11.4
                tar.extractall(tmp)
        tops = [p for p in Path(tmp).iterdir() if p.is_dir()]
        if len(tops) != 1 or not (tops[0] / "tests" / "runtests.py").exists():
            raise SetupError(f"{archive} has no <top>/tests/runtests.py")
        shutil.rmtree(target, ignore_errors=True)
        tops[0].rename(target)
    return target


def _find_sdist(folder: Path, version: str) -> Path | None:
    for path in folder.iterdir():
        if path.name.lower() == f"django-{version}.tar.gz":
            return path
    return None


# -- the runs -------------------------------------------------------------------


class Outcome:
    def __init__(self, label: str, returncode: int, output: str, seconds: float, log_path: Path):
        self.label = label
        self.returncode = returncode
        self.output = output
        self.seconds = seconds
        self.log_path = log_path
        ran = re.findall(r"^Ran (\d+) tests? in ", output, re.M)
        self.ran = int(ran[-1]) if ran else None
        status = re.findall(r"^(OK(?: \(.*\))?|FAILED \(.*\))\s*$", output, re.M)
        self.status = status[-1] if status else "no result line"
        proof = re.findall(r"^signaltrace transparency: recorded .*$", output, re.M)
        self.proof = proof[-1] if proof else None
        self.results = _per_test_results(output)

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and self.status.startswith("OK")

    def line(self) -> str:
        return (
            f"{self.label:<28} exit {self.returncode}; Ran {self.ran} tests; "
            f"{self.status}  ({self.seconds:.1f}s, log {self.log_path})"
        )


def _per_test_results(output: str) -> dict[str, str]:
    """``{test id: outcome}`` from runtests' ``-v 2`` output (best effort)."""
    results: dict[str, str] = {}
    current = None
    for line in output.splitlines():
        head = re.match(r"^(test\w*) \(([\w.]+)\)", line)
        if head:
            current = head.group(2)
            if not current.endswith("." + head.group(1)):
                current = f"{current}.{head.group(1)}"
        tail = re.search(
            r" \.\.\. (ok|FAIL|ERROR|skipped.*|expected failure|unexpected success)$", line
        )
        if tail and current:
            results[current] = tail.group(1).split(" ")[0]
            current = None
    return results


def run_suites(
    label: str,
    python: Path,
    tests_dir: Path,
    suites: list[str],
    extra: list[str],
    traced: bool,
    log_path: Path,
) -> Outcome:
    env = dict(os.environ)
    env.pop("SIGNALTRACE_TRANSPARENCY", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("PYTHONPATH", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if traced:
        env["PYTHONPATH"] = str(HOOK_DIR)
        env["SIGNALTRACE_TRANSPARENCY"] = "1"
    cmd = [str(python), "runtests.py", "--parallel=1", "--verbosity=2", *extra, *suites]
    shown_env = f"PYTHONPATH={HOOK_DIR} SIGNALTRACE_TRANSPARENCY=1 " if traced else ""
    log(f"{label}: (cd {tests_dir} && {shown_env}{' '.join(cmd)})")
    start = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=tests_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seconds = time.monotonic() - start
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(proc.stdout)
    return Outcome(label, proc.returncode, proc.stdout, seconds, log_path)


def _failure_excerpt(output: str, limit: int = 12000) -> str:
    """The ``====`` failure sections and the tail of a run's output."""
    index = output.find("\n======")
    text = output[index:] if index != -1 else output[-4000:]
    return text if len(text) <= limit else text[:limit] + "\n[... truncated, see the log ...]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("django_spec", help='pip requirement, e.g. "django>=5.2,<5.3"')
    parser.add_argument(
        "python_version",
        help="e.g. 3.11 or 3.12.1 (resolved through pyenv), or a path to a Python executable",
    )
    parser.add_argument(
        "--suites",
        nargs="+",
        default=list(DEFAULT_SUITES),
        help="runtests.py labels (default: %(default)s)",
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the run without signaltrace"
    )
    parser.add_argument(
        "runtests_args", nargs="*", help="after --: extra arguments for runtests.py"
    )
    args = parser.parse_args(argv)

    try:
        base_python, py_full = find_python(args.python_version)
        venv = ensure_venv(args.django_spec, base_python, py_full)
        version = installed_django_version(venv)
        source = ensure_sdist(venv, version)
    except (SetupError, subprocess.CalledProcessError, OSError) as err:
        log(f"SET-UP FAILED: {err}")
        return EXIT_SETUP_FAILED

    tests_dir = source / "tests"
    python = venv_python(venv)
    logs = CACHE / "logs"
    name = f"django-{version}-py{py_full}"
    log(
        f"Django {version} (from {args.django_spec!r}) on Python {py_full}; suites: {' '.join(args.suites)}"
    )

    baseline = None
    if not args.no_baseline:
        baseline = run_suites(
            "baseline (no signaltrace)",
            python,
            tests_dir,
            args.suites,
            args.runtests_args,
            False,
            logs / f"{name}-baseline.log",
        )
    traced = run_suites(
        "traced (signaltrace on)",
        python,
        tests_dir,
        args.suites,
        args.runtests_args,
        True,
        logs / f"{name}-traced.log",
    )

    problems = []
    if not traced.passed:
        problems.append(f"the traced run failed ({traced.status}, exit {traced.returncode})")
    if traced.proof is None:
        problems.append(
            "the traced run printed no 'signaltrace transparency: recorded' line: the hook never ran"
        )
    baseline_failed = baseline is not None and not baseline.passed
    if baseline is not None and baseline.ran != traced.ran:
        problems.append(f"the runs ran different numbers of tests ({baseline.ran} vs {traced.ran})")

    print()
    print(f"== transparency: Django {version} on Python {py_full} ==")
    if baseline is not None:
        print(baseline.line())
    print(traced.line())
    for line in traced.output.splitlines():
        if line.startswith("signaltrace transparency:"):
            print("  " + line)
    if baseline is not None:
        differ = sorted(
            (test, baseline.results.get(test, "-"), traced.results.get(test, "-"))
            for test in set(baseline.results) | set(traced.results)
            if baseline.results.get(test) != traced.results.get(test)
        )
        for test, before, after in differ:
            print(f"  DIFFERS: {test}: baseline {before}, traced {after}")
    if baseline_failed:
        print("\n-- baseline failures --")
        print(_failure_excerpt(baseline.output))
    if not traced.passed:
        print("\n-- traced failures --")
        print(_failure_excerpt(traced.output))
    if problems:
        print("RESULT: FAIL: " + "; ".join(problems))
        return EXIT_TRACED_FAILED
    if baseline_failed:
        print("RESULT: NO VERDICT: the baseline run (without signaltrace) failed too")
        return EXIT_BASELINE_FAILED
    print("RESULT: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
