"""The README's ways to install: `meson install` for every interpreter, and
`pip install .` offline (Debian's meson-python, --no-build-isolation)."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYENV = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions"


def interpreters():
    found = [Path("/usr/bin/python3")]
    for v in ("3.10", "3.12", "3.13"):
        found += sorted(PYENV.glob(f"{v}.*/bin/python3"))[:1]
    return [p for p in found if p.exists()]


def run(argv, **kw):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=900, **kw)
    assert r.returncode == 0, f"{argv}: {r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.mark.parametrize("py", interpreters(), ids=lambda p: str(p))
def test_meson_install_puts_the_package_where_the_interpreter_imports_it(py, tmp_path):
    # Plain meson, no extra environment: 3.12+ works with Debian's meson 1.0.
    build, dest = tmp_path / "build", tmp_path / "dest"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TRACEPATCH_BUILD")}
    run(["meson", "setup", build, f"-Dpython={py}", "-Ddaemon=false", "-Dtests=false",
         "-Dbench=false"], cwd=ROOT, env=env)
    run(["ninja", "-C", build], env=env)
    run(["meson", "install", "-C", build, "--destdir", dest], env=env)
    inits = list(dest.rglob("tracepatch/__init__.py"))  # pyenv's dirs start with a dot
    assert len(inits) == 1, inits
    pkg = inits[0].parent
    names = {p.name for p in pkg.iterdir()}
    assert {"__init__.py", "_trace.py", "_settings.py", "py.typed", "_tracepatch.pyi",
            "_version.py", "pytest_plugin.py", "_ipython.py"} <= names
    assert {p.name for p in (pkg / "integrations").iterdir()} == {
        "__init__.py", "_common.py", "django.py", "fastapi.py", "flask.py", "wsgi.py"}
    assert [n for n in names if n.startswith("_tracepatch.cpython-")], names
    # The directory under DESTDIR is one the interpreter searches (prefix /usr/local),
    # or its own site-packages.
    site = "/" + str(pkg.parent.relative_to(dest))
    r = run([py, "-c", "import sys, sysconfig; print('\\n'.join(sys.path)); "
             "print(sysconfig.get_path('platlib'))"], env=env)
    assert site in r.stdout.splitlines(), (site, r.stdout)
    # And the installed copy works.
    r = run([py, "-c", "from tracepatch import trace\n"
             "def f(x): return x + 1\n"
             "with trace(daemon='off') as t: f(1)\n"
             "print(t.call_count, t.roots[0].name)"],
            env=dict(env, PYTHONPATH=str(pkg.parent)), cwd=tmp_path)
    assert r.stdout == "1 f\n"


def test_pip_install_works_offline_with_debian_meson_python(tmp_path):
    py = "/usr/bin/python3"
    if subprocess.run([py, "-c", "import mesonpy"], capture_output=True).returncode:
        pytest.fail("python3-mesonpy is missing: deploy/deps.sh installs it (deploy/packages.txt)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TRACEPATCH_BUILD")}
    run([py, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-w", tmp_path, "."],
        cwd=ROOT, env=env)
    (wheel,) = tmp_path.glob("tracepatch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"tracepatch/__init__.py", "tracepatch/py.typed", "tracepatch/_tracepatch.pyi",
            "tracepatch/_version.py", "tracepatch/pytest_plugin.py", "tracepatch/_ipython.py",
            "tracepatch/integrations/__init__.py", "tracepatch/integrations/wsgi.py",
            "tracepatch/integrations/flask.py", "tracepatch/integrations/django.py",
            "tracepatch/integrations/fastapi.py",
            "tracepatch/integrations/_common.py"} <= names
    # pytest finds the plugin of an installed tracepatch through this entry point.
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[pytest11]\ntracepatch = tracepatch.pytest_plugin\n" in text, text
    assert [n for n in names if n.startswith("tracepatch/_tracepatch.cpython-311")], names
    venv = tmp_path / "venv"
    run([py, "-m", "venv", venv], env=env)
    run([venv / "bin" / "pip", "install", "--no-deps", "--no-index", wheel], env=env)
    r = run([venv / "bin" / "python", "-c", "from tracepatch import trace\n"
             "def f(x): return x + 1\n"
             "with trace(daemon='off') as t: f(1)\n"
             "print(t.call_count)"], env=env, cwd=tmp_path)
    assert r.stdout == "1\n"
