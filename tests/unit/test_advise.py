"""Unit tests of `imagebench advise`'s rewrites on a corpus of Dockerfiles (no daemon)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.advise import rewrites as rw
from harness.advise.command import (
    Advice,
    diff,
    failing_line,
    plan,
    render,
    scan_context,
    source_file,
    summarize,
    write,
)
from harness.errors import UsageError

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "dockerfiles"
FILES = sorted(CORPUS.glob("*.Dockerfile"))
CTX = rw.ContextInfo(
    files=(
        "app.py",
        "requirements.txt",
        "requirements/prod.txt",
        "requirements/base.txt",
        ".env",
        "venv/pyvenv.cfg",
    ),
    dirs=(".git", "__pycache__", "tests", "venv", "requirements"),
    texts={"requirements/prod.txt": "-r base.txt\nflask\n", "requirements/base.txt": "requests\n"},
)


def load(name: str) -> rw.Dockerfile:
    with open(CORPUS / name, "rb") as fh:
        return rw.parse(fh.read().decode())


def applies(name: str) -> set[str]:
    return {r.name for r in rw.rewrites(load(name), CTX)}


def test_corpus_has_every_style():
    """The corpus holds multi-line RUN, heredocs, ARG in FROM, several stages, COPY --from, comments and CRLF."""
    texts = {p.name: p.read_bytes() for p in FILES}
    joined = b"".join(texts.values())
    assert b"<<EOT" in joined and b"COPY --from=" in joined and b"FROM python:${PY}" in joined
    assert b"\\\n    # " in joined  # a comment inside a continued RUN
    assert any(b"\r\n" in t for t in texts.values())
    assert sum(t.count(b"\nFROM ") + t.startswith(b"FROM ") for t in texts.values()) > len(texts)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("practice", list(rw.PRACTICES))
def test_every_rewrite_parses_again(path: Path, practice: str):
    """Each practice's output, where it applies, parses with BuildKit's parser and keeps the line endings."""
    text = path.read_bytes().decode()
    for variant in (text, text.replace("\r\n", "\n").replace("\n", "\r\n")):
        df = rw.parse(variant)
        r = rw.PRACTICES[practice](df, CTX)
        if r is None:
            continue
        again = rw.parse(r.dockerfile)
        assert again.instructions, practice
        assert r.reason and "\n" not in r.reason
        if "\r\n" in variant:
            assert "\n" not in r.dockerfile.replace("\r\n", "")
        else:
            assert "\r" not in r.dockerfile


def test_applicability_table():
    """Which practices apply to which corpus file (and which do not)."""
    assert applies("bad-order.Dockerfile") == {"order", "pip-cache-mount", "non-root", "dockerignore"}
    assert applies("good.Dockerfile") == {"dockerignore"}
    assert "order" not in applies("heredoc.Dockerfile")  # requirements already copied first
    assert "multi-stage" not in applies("multistage.Dockerfile")
    assert "non-root" not in applies("multistage.Dockerfile")  # USER nobody
    assert {"slim-base", "multi-stage", "exec-form", "apt-cleanup"} <= applies("crlf.Dockerfile")


def test_order_moves_source_copy_after_install():
    """order: requirements copied and installed before `COPY . .`; the comment above the COPY moves with it."""
    r = rw.order(load("bad-order.Dockerfile"), CTX)
    lines = r.dockerfile.splitlines()
    assert lines[2:6] == [
        "COPY requirements.txt ./",
        "RUN pip install --no-cache-dir -r requirements.txt",
        "# Source first: any edit to the code invalidates the dependency install below.",
        "COPY . .",
    ]


def test_order_nested_requirements_keep_flags_and_includes():
    """order: -r files inside requirements are copied too, into their folder, with the COPY's --chown."""
    r = rw.order(load("nested-reqs.Dockerfile"), CTX)
    assert (
        "COPY --chown=1000:1000 requirements/prod.txt requirements/base.txt /srv/app/requirements/"
        in r.dockerfile
    )
    assert r.dockerfile.index("pip install") < r.dockerfile.index("COPY --chown=1000:1000 . /srv/app")


def test_order_skips_local_installs():
    """order does not apply when the install needs the source (`pip install .`, `-e .` in requirements)."""
    df = rw.parse("FROM python:3.13\nCOPY . .\nRUN pip install .\n")
    assert rw.order(df, CTX) is None
    ctx = rw.ContextInfo(files=("requirements.txt",), texts={"requirements.txt": "-e .\n"})
    df = rw.parse("FROM python:3.13\nCOPY . .\nRUN pip install -r requirements.txt\n")
    assert rw.order(df, ctx) is None


def test_pip_cache_mount_and_no_cache_dir():
    """pip-cache-mount adds the cache mount and drops --no-cache-dir; pip-no-cache-dir adds the flag."""
    r = rw.pip_cache_mount(load("bad-order.Dockerfile"), CTX)
    assert "RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt" in r.dockerfile
    r = rw.pip_no_cache_dir(load("multiline.Dockerfile"), CTX)
    assert r.dockerfile.count("pip install --no-cache-dir") == 2
    assert "    # headers for psycopg" in r.dockerfile  # untouched lines stay as they were


def test_pip_cache_mount_skips_non_root_installs():
    """A pip install after `USER app` would cache in the user's home: no root cache mount there."""
    df = rw.parse("FROM python:3.13\nUSER app\nRUN pip install --user flask\n")
    assert rw.pip_cache_mount(df, CTX) is None


def test_slim_names():
    """python:X -> python:X-slim, distro suffix kept; slim, alpine, digests and other images are left alone."""
    assert rw.slim_of("python:3.13") == "python:3.13-slim"
    assert rw.slim_of("python:3.12-bookworm") == "python:3.12-slim-bookworm"
    assert rw.slim_of("python") == "python:slim"
    assert rw.slim_of("docker.io/library/python:3.13") is None
    assert rw.slim_of("python:3.13-slim") is None
    assert rw.slim_of("python:3.13-alpine") is None
    assert rw.slim_of("python:3.13@sha256:" + "0" * 64) is None
    assert rw.slim_of("node:22") is None


def test_slim_adds_gcc_when_the_build_compiles():
    """slim-base adds gcc + libc6-dev before the install when --no-binary says it compiles; says so when unsure."""
    r = rw.slim_base(load("arg-from.Dockerfile"), CTX)
    assert "FROM python:${PY}-slim" in r.dockerfile
    assert r.dockerfile.index("gcc libc6-dev") < r.dockerfile.index("pip install")
    assert "--no-binary" in r.reason
    r = rw.slim_base(load("full-base.Dockerfile"), CTX)
    assert "gcc" not in r.dockerfile and "unsure" in r.reason


def test_multi_stage_venv_builder_and_slim_final():
    """multi-stage: venv built on the full base, copied into the slim final stage without pip or gcc."""
    r = rw.multi_stage(load("crlf.Dockerfile"), CTX)
    text = r.dockerfile.replace("\r\n", "\n")
    builder, final = text.split("\n\nFROM ")
    assert builder.startswith("FROM python:3.13 AS builder\nRUN python -m venv /opt/venv")
    assert "apt-get install -y gcc" in builder and "pip install" in builder
    assert final.startswith("python:3.13-slim\nCOPY --from=builder /opt/venv /opt/venv")
    assert "gcc" not in final and "pip install" not in final and "CMD python app.py" in final


def test_exec_form_only_without_shell_features():
    """exec-form converts plain commands to JSON argv and leaves commands that need a shell alone."""
    r = rw.exec_form(load("full-base.Dockerfile"), CTX)
    assert 'CMD ["gunicorn", "--bind", "0.0.0.0:8000", "app:app"]' in r.dockerfile
    assert rw.exec_form(rw.parse("FROM x\nCMD cd /app && ./run $PORT\n"), CTX) is None


def test_non_root_after_last_build_step():
    """non-root inserts the user after the last RUN/COPY, before CMD; a numeric USER on unknown bases."""
    r = rw.non_root(load("heredoc.Dockerfile"), CTX)
    tail = r.dockerfile.splitlines()[-3:]
    assert tail[0].startswith("RUN groupadd --system --gid 10001 app") and tail[1:] == [
        "USER app",
        "CMD python app.py",
    ]
    r = rw.non_root(rw.parse('FROM gcr.io/distroless/python3\nCOPY . /app\nCMD ["app.py"]\n'), CTX)
    assert "USER 10001:10001" in r.dockerfile


def test_dockerignore_from_context():
    """dockerignore lists what the context holds (.git, caches, venvs, .env, tests) and keeps existing lines."""
    r = rw.dockerignore(load("bad-order.Dockerfile"), CTX)
    assert r.dockerfile == load("bad-order.Dockerfile").text
    lines = r.dockerignore.splitlines()
    for want in (".git", "tests", "venv", "**/__pycache__", ".env"):
        assert want in lines
    ctx = rw.ContextInfo(files=(".env",), dirs=(".git",), texts={".dockerignore": ".git\n"})
    r = rw.dockerignore(load("bad-order.Dockerfile"), ctx)
    assert r.dockerignore.startswith(".git\n") and r.dockerignore.count(".git") == 1
    assert rw.dockerignore(load("bad-order.Dockerfile"), rw.ContextInfo(files=("app.py",))) is None


def test_dockerignore_keeps_what_the_build_uses():
    """tests/ is not ignored when the Dockerfile copies it or runs pytest."""
    df = rw.parse("FROM python:3.13\nCOPY tests tests\nRUN pytest\n")
    assert rw.dockerignore(df, rw.ContextInfo(dirs=("tests",))) is None


def test_apt_cleanup_same_run_and_heredoc():
    """apt-cleanup adds --no-install-recommends and removes the lists in the same RUN (also in a heredoc)."""
    r = rw.apt_cleanup(load("heredoc.Dockerfile"), CTX)
    assert "apt-get install --no-install-recommends -y curl\nrm -rf /var/lib/apt/lists/*\nEOT" in r.dockerfile
    r = rw.apt_cleanup(load("multiline.Dockerfile"), CTX)
    assert "    && echo done && rm -rf /var/lib/apt/lists/*" in r.dockerfile
    assert rw.apt_cleanup(rw.parse(rw.slim_base(load("arg-from.Dockerfile"), CTX).dockerfile), CTX) is None


def test_unknown_practice_and_bad_dockerfile():
    """--only with an unknown name and an unparsable Dockerfile are one-line usage errors."""
    with pytest.raises(UsageError, match="unknown practice nope"):
        rw.select(["order", "nope"])
    with pytest.raises(UsageError, match="no FROM"):
        rw.parse("RUN echo hi\n")


def test_plan_write_and_diff(tmp_path: Path):
    """plan reads the context; --write saves each rewrite and a unified diff that names both files."""
    ctx = tmp_path / "proj"
    (ctx / "tests").mkdir(parents=True)
    (ctx / "app.py").write_text("print('hi')\n")
    (ctx / "requirements.txt").write_text("flask\n")
    (ctx / "Dockerfile").write_bytes((CORPUS / "bad-order.Dockerfile").read_bytes())
    advice = plan(ctx / "Dockerfile", None, ["order", "dockerignore"])
    assert [r.name for r in advice.rewrites] == ["order", "dockerignore"]
    assert advice.scenarios == ("cold", "edit-source") and advice.edit_file == "app.py"
    out = tmp_path / "out"
    write(advice, out)
    assert (out / "order.Dockerfile").read_text() == advice.rewrites[0].dockerfile
    assert (out / "dockerignore.Dockerfile.dockerignore").read_text().splitlines()[-1] == "tests"
    d = (out / "order.diff").read_text()
    assert d.startswith("--- Dockerfile\n+++ order.Dockerfile\n") and "+COPY requirements.txt ./" in d
    assert diff(advice, advice.rewrites[1]).count("+++ dockerignore.Dockerfile.dockerignore") == 1


def test_scan_context_does_not_enter_venvs(tmp_path: Path):
    """scan_context lists a virtualenv and .git without walking into them; source_file picks the app module."""
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / ".venv" / "lib" / "x.py").write_text("")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("")
    info = scan_context(tmp_path)
    assert ".venv/pyvenv.cfg" in info.files and ".venv/lib/x.py" not in info.files
    assert source_file(info) == "pkg/mod.py"


def test_failing_line_prefers_the_compiler_error():
    """A broken build is summarized by the compiler's error line, not BuildKit's generic last line."""
    trial = {
        "error": "build failed: process did not complete successfully",
        "error_text": "#9 3.1   building 'fastsum' extension\n"
        "#9 3.2   error: command 'gcc' failed: No such file or directory\n"
        'ERROR: failed to solve: process "/bin/sh -c pip install ." did not complete successfully: exit code: 1\n',
    }
    assert failing_line(trial) == "error: command 'gcc' failed: No such file or directory"
    assert failing_line({"error": "build failed: x"}) == "build failed: x"
    pip = {
        "error": "build failed",
        "error_text": "  error: subprocess-exited-with-error\n"
        "      x86_64-linux-gnu-gcc -O2 -c fastsum.c -o build/fastsum.o\n"
        "      error: [Errno 2] No such file or directory: 'x86_64-linux-gnu-gcc'\n"
        "  ERROR: Failed building wheel for fastsum\n",
    }
    assert failing_line(pip) == "error: [Errno 2] No such file or directory: 'x86_64-linux-gnu-gcc'"


def test_advice_scenarios_without_order():
    """edit-source is measured only where the order rewrite applies."""
    a = Advice(Path("D"), Path(), "FROM x\n", [rw.Rewrite("non-root", "FROM x\n", "r")], "app.py", None)
    assert a.scenarios == ("cold",)


def test_multi_stage_says_when_runtime_libraries_may_be_missing():
    """multi-stage drops an apt RUN of -dev packages from the final stage and says the runtime libs are not added."""
    r = rw.multi_stage(load("multiline.Dockerfile"), CTX)
    assert "unsure: the runtime libraries of libpq-dev are not added" in r.reason
    assert "libpq-dev" not in r.dockerfile.split("\n\nFROM ")[1]


def _trial(variant: str, scenario: str, t: int, status: str = "ok", user: str = "", **metrics) -> dict:
    rec = {"variant": variant, "scenario": scenario, "trial": t, "status": status, "metrics": metrics}
    if status == "ok":
        rec["image"] = {"user": user}
    return rec


def test_summary_ranks_by_effect_and_reports_broken_rewrites():
    """The rewrite whose interval is lowest ranks first; a failed build is broken, last, with its error line;
    a smoke failure is broken too; dropping root is a recommendation of its own."""
    advice = Advice(
        Path("Dockerfile"),
        Path(),
        "FROM x\n",
        [rw.Rewrite(n, "FROM x\n", f"why {n}") for n in ("slim-base", "order", "non-root", "exec-form")],
        "app.py",
        None,
    )
    trials = []
    for t in range(2):
        for v, edit, size, user in (
            ("original", 3.0, 100.0, ""),
            ("order", 0.1, 100.0, ""),
            ("non-root", 3.0, 100.0, "app"),
            ("exec-form", 3.0, 100.0, ""),
        ):
            smoke = 0 if v == "exec-form" else 1
            trials.append(
                _trial(v, "cold", t, user=user, image_bytes=size, build_seconds=5.0 + t, smoke_ok=smoke)
            )
            trials.append(_trial(v, "edit-source", t, build_seconds=edit + 0.01 * t, smoke_ok=smoke))
        trials.append(
            {
                "variant": "slim-base",
                "scenario": "cold",
                "trial": t,
                "status": "failed",
                "metrics": {},
                "error": "build failed",
                "error_text": "#8 2.0 error: command 'gcc' failed: No such file or directory\n",
            }
        )
    for tr in trials:
        if tr["variant"] == "exec-form":
            tr["smoke"] = {"last_line": "ModuleNotFoundError: No module named 'app'"}
    s = summarize({"run_id": "r", "seed": 1, "trials": trials}, advice, "true")
    names = [r["variant"] for r in s["rewrites"]]
    assert names[0] == "order" and set(names[-2:]) == {"exec-form", "slim-base"}
    first = s["rewrites"][0]
    assert first["effect"] == "rebuild after edit" and first["cells"]["rebuild after edit"]["high"] < 0.1
    assert first["recommended"]
    by = {r["variant"]: r for r in s["rewrites"]}
    assert by["slim-base"]["status"] == "broken" and "'gcc' failed" in by["slim-base"]["failure"]
    assert by["exec-form"]["status"] == "broken" and "ModuleNotFoundError" in by["exec-form"]["failure"]
    assert not by["slim-base"]["recommended"] and not by["exec-form"]["recommended"]
    assert by["non-root"]["recommended"] and by["non-root"]["root"] is False and s["original"]["root"] is True
    text = render(s)
    assert "1. order (recommended)" in text and "slim-base (BROKEN)" in text and "×0.035" in text
