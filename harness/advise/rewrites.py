"""Practice rewrites: one pure function per practice, parsed Dockerfile in, rewritten text out.

Every rewrite takes a `Dockerfile` (BuildKit's own parser, through the `dockerfile` package) and a
`ContextInfo` (what the build context holds, gathered by the caller) and returns a `Rewrite` (the
new Dockerfile text, a one-line reason, and for `dockerignore` the new ignore file) or None when
the practice does not apply. Rewrites edit the original text by line ranges, so comments, line
continuations, heredocs and the file's line endings survive everywhere they did not touch.
No rewrite adds a `# syntax=` line: the frontend built into the engine reads everything written
here (cache mounts included), and a syntax image would need the network.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

import dockerfile as bk

from harness.errors import UsageError

VENV = "/opt/venv"
PIP_CACHE = "/root/.cache/pip"
# apt packages that only building needs (compilers, headers, build drivers)
BUILD_PACKAGES = re.compile(
    r"^(gcc(-\d+)?|g\+\+(-\d+)?|cpp|clang|make|cmake|build-essential|libc6?-dev|.*-dev|pkg-config|pkgconf"
    r"|autoconf|automake|libtool|rustc|cargo|git)$"
)
_PIP_INSTALL = re.compile(r"\bpip(?:3(?:\.\d+)?)?\s+install\b")
_APT_INSTALL = re.compile(r"\bapt(?:-get)?\s+(?:-\S+\s+)*install\b")
_SHELL_META = re.compile(r"[&|;<>()$`*?~\\\n]|^\s*cd\s")


# --------------------------------------------------------------------------- parsed model


@dataclass(frozen=True)
class Instruction:
    cmd: str  # upper case: FROM, RUN, COPY, ...
    flags: tuple[str, ...]
    value: tuple[str, ...]
    json: bool
    original: str
    start: int  # first line, 1-based
    end: int  # last line, inclusive
    heredoc: bool
    stage: int  # -1 before the first FROM

    @property
    def text(self) -> str:
        """The instruction's arguments as one string (continuations joined, comments dropped)."""
        return " ".join(self.value)


@dataclass(frozen=True)
class Dockerfile:
    text: str
    lines: tuple[str, ...]  # physical lines without their line ending
    newline: str  # "\r\n" or "\n", as the file has them
    instructions: tuple[Instruction, ...]

    def stage(self, n: int) -> list[Instruction]:
        return [i for i in self.instructions if i.stage == n]

    @property
    def stages(self) -> int:
        return sum(1 for i in self.instructions if i.cmd == "FROM")

    def raw(self, ins: Instruction) -> list[str]:
        return list(self.lines[ins.start - 1 : ins.end])

    def global_args(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for ins in self.instructions:
            if ins.stage >= 0:
                break
            if ins.cmd == "ARG":
                for v in ins.value:
                    name, _, default = v.partition("=")
                    out[name] = default.strip("\"'")
        return out


@dataclass(frozen=True)
class ContextInfo:
    """What the build context holds (relative posix paths), and the text of small manifests."""

    files: tuple[str, ...] = ()
    dirs: tuple[str, ...] = ()
    texts: dict[str, str] = field(default_factory=dict)  # requirements files, .dockerignore


@dataclass(frozen=True)
class Rewrite:
    name: str
    dockerfile: str
    reason: str
    dockerignore: str | None = None  # the ignore file this variant builds with, when it sets one


def parse(text: str) -> Dockerfile:
    """Parse with BuildKit's parser; a file it rejects is a usage error naming the parser's message."""
    text = text.removeprefix("\ufeff")
    try:
        cmds = bk.parse_string(text)
    except bk.GoParseError as exc:
        raise UsageError(f"Dockerfile does not parse: {exc}") from None
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = tuple(re.split(r"\r?\n", text))
    out, stage = [], -1
    for c in cmds:
        if c.cmd.upper() == "FROM":
            stage += 1
        out.append(
            Instruction(
                cmd=c.cmd.upper(),
                flags=tuple(c.flags),
                value=tuple(c.value),
                json=bool(c.json),
                original=c.original,
                start=c.start_line,
                end=c.end_line,
                heredoc=bool(c.heredocs),
                stage=stage,
            )
        )
    if not any(i.cmd == "FROM" for i in out):
        raise UsageError("Dockerfile has no FROM instruction")
    return Dockerfile(text=text, lines=lines, newline=newline, instructions=tuple(out))


def _splice(df: Dockerfile, edits: list[tuple[int, int, list[str]]]) -> str:
    """Replace line ranges [start, end] (1-based, inclusive; end = start - 1 inserts) by new lines."""
    lines = list(df.lines)
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        lines[start - 1 : end] = new
    return df.newline.join(lines)


def _lines(text: str) -> list[str]:
    return text.split("\n")


# --------------------------------------------------------------------------- shared helpers


def _from_image(ins: Instruction) -> str:
    return ins.value[0] if ins.value else ""


def _stage_name(ins: Instruction) -> str | None:
    v = ins.value
    return v[2].lower() if len(v) >= 3 and v[1].upper() == "AS" else None


def _final_base(df: Dockerfile) -> str:
    """The external image the last stage builds on (through `FROM <stage>` chains)."""
    froms = [i for i in df.instructions if i.cmd == "FROM"]
    names = {_stage_name(f): f for f in froms if _stage_name(f)}
    img = _from_image(froms[-1])
    seen = set()
    while img.lower() in names and img.lower() not in seen:
        seen.add(img.lower())
        img = _from_image(names[img.lower()])
    return img


def _subst_args(image: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1), ""), image)


def slim_of(image: str) -> str | None:
    """python:X -> python:X-slim (python:X-bookworm -> python:X-slim-bookworm); None when not a full python image."""
    if "@" in image:
        return None  # a digest pins the full image; a slim digest cannot be guessed
    repo, sep, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    if not sep:
        repo, tag = image, ""
    if repo.split("/")[-1] != "python" or repo.count("/") > 1:
        return None
    if any(w in tag for w in ("slim", "alpine", "windows", "nanoserver")):
        return None
    if tag in ("", "latest"):
        return f"{repo}:slim"
    m = re.match(r"^(.*?)(-(?:bookworm|bullseye|trixie|buster))$", tag)
    if m:
        return f"{repo}:{m.group(1)}-slim{m.group(2)}"
    return f"{repo}:{tag}-slim"


def _is_pip_install(ins: Instruction) -> bool:
    return ins.cmd == "RUN" and bool(_PIP_INSTALL.search(_run_text(ins)))


def _run_text(ins: Instruction) -> str:
    return ins.original if ins.heredoc else ins.text


def _users(df: Dockerfile) -> dict[int, str]:
    """The USER in effect at each instruction index ("" = root)."""
    out, user = {}, ""
    for k, ins in enumerate(df.instructions):
        if ins.cmd == "FROM":
            user = ""
        out[k] = user
        if ins.cmd == "USER" and ins.value:
            user = ins.value[0]
    return out


def _is_root(user: str) -> bool:
    return user.split(":")[0] in ("", "root", "0")


def _apt_packages(ins: Instruction) -> list[str]:
    """Package names of every `apt-get install` in a RUN (options and versions dropped)."""
    pkgs: list[str] = []
    text = _run_text(ins)
    for m in _APT_INSTALL.finditer(text):
        seg = re.split(r"&&|\|\||;|\||\n", text[m.end() :], maxsplit=1)[0]
        pkgs += [w.split("=")[0] for w in seg.split() if not w.startswith("-") and w != "\\"]
    return pkgs


def _installs_build_tools(ins: Instruction) -> bool:
    return ins.cmd == "RUN" and any(BUILD_PACKAGES.match(p) for p in _apt_packages(ins))


def _compiles(df: Dockerfile, ctx: ContextInfo, stage: int) -> str | None:
    """Why the stage's Python installs compile, when the Dockerfile or a requirements file says so."""
    for ins in df.stage(stage):
        if ins.cmd != "RUN":
            continue
        t = _run_text(ins)
        if _PIP_INSTALL.search(t) and "--no-binary" in t:
            return "a pip install uses --no-binary"
        if re.search(r"\b(build_ext|setup\.py\s+build)\b", t):
            return "a RUN builds extensions"
        if _installs_build_tools(ins):
            return "the Dockerfile installs " + ", ".join(
                p for p in _apt_packages(ins) if BUILD_PACKAGES.match(p)
            )
    for name, text in ctx.texts.items():
        if _is_requirements(name) and re.search(r"^\s*--no-binary", text, re.M):
            return f"{name} asks for --no-binary"
    return None


def _is_requirements(name: str) -> bool:
    base = posixpath.basename(name)
    return base.endswith(".txt") and ("requirement" in name or "constraint" in name)


def _replace_word(line: str, word: str, new: str) -> str:
    return re.sub(rf"(^|\s){re.escape(word)}(?=\s|$)", lambda m: m.group(1) + new, line, count=1)


# --------------------------------------------------------------------------- instruction order


def _req_files(text: str) -> list[str] | None:
    """Files a pip install reads (-r/-c); None when it also installs a local path (needs the source)."""
    files: list[str] = []
    for m in _PIP_INSTALL.finditer(text):
        seg = re.split(r"&&|\|\||;|\|", text[m.end() :], maxsplit=1)[0]
        try:
            words = shlex.split(seg)
        except ValueError:
            return None
        k = 0
        while k < len(words):
            w = words[k]
            if w in ("-r", "--requirement", "-c", "--constraint") and k + 1 < len(words):
                files.append(words[k + 1])
                k += 2
                continue
            for pre in ("--requirement=", "--constraint=", "-r", "-c"):
                if w.startswith(pre) and len(w) > len(pre) and not w.startswith("--r"):
                    files.append(w[len(pre) :])
                    break
            else:
                if w in (".", "./") or w.startswith(("./", "../", "/")) or w in ("-e", "--editable"):
                    return None
            k += 1
    return files


def _abs(path: str, workdir: str) -> str:
    return posixpath.normpath(path if path.startswith("/") else posixpath.join(workdir, path))


def _broad_copy(ins: Instruction) -> bool:
    if ins.cmd not in ("COPY", "ADD") or any(f.startswith("--from") for f in ins.flags) or ins.heredoc:
        return False
    return any(s in (".", "./") for s in ins.value[:-1])


def _nested_reqs(files: list[str], ctx: ContextInfo) -> list[str] | None:
    """The files named plus those they include (-r/-c inside); None when one installs a local path."""
    out, todo = [], list(files)
    while todo:
        f = posixpath.normpath(todo.pop(0))
        if f in out:
            continue
        out.append(f)
        for line in ctx.texts.get(f, "").splitlines():
            line = line.split("#", 1)[0].strip()
            m = re.match(r"^(?:-r|--requirement|-c|--constraint)[\s=]+(\S+)", line)
            if m:
                todo.append(posixpath.join(posixpath.dirname(f), m.group(1)))
            elif re.match(r"^(-e|--editable)\b|^\.{1,2}(/|$)|^file:", line):
                return None
    return out


def order(df: Dockerfile, ctx: ContextInfo) -> Rewrite | None:
    """Copy the dependency manifests and install them before `COPY . .` (dependencies change less)."""
    instrs = df.instructions
    for stage in range(df.stages):
        workdir, broad, broad_wd = "/", None, "/"
        for k, ins in enumerate(instrs):
            if ins.stage != stage:
                continue
            if ins.cmd == "WORKDIR" and ins.value:
                if broad is not None:
                    break
                workdir = _abs(ins.value[0], workdir)
            elif _broad_copy(ins):
                if broad is not None:
                    break
                broad, broad_wd = k, workdir
            elif broad is not None and ins.cmd in ("COPY", "ADD"):
                break
            elif broad is not None and _is_pip_install(ins):
                files = _req_files(_run_text(ins))
                if not files:
                    break
                b = instrs[broad]
                dest = b.value[-1]
                dest_abs = _abs(dest, broad_wd)
                rels: list[str] = []
                for f in files:
                    p = _abs(f, workdir)
                    if not (p + "/").startswith(dest_abs.rstrip("/") + "/"):
                        rels = []
                        break
                    rels.append(posixpath.relpath(p, dest_abs))
                if not rels:
                    break
                if ctx.files:
                    nested = _nested_reqs(rels, ctx)
                    if nested is None or any(r not in ctx.files for r in nested):
                        break
                    rels = nested
                return _order_rewrite(df, b, ins, rels, dest)
    return None


def _order_rewrite(
    df: Dockerfile, broad: Instruction, pip: Instruction, rels: list[str], dest: str
) -> Rewrite:
    flags = " ".join(f for f in broad.flags if not f.startswith("--exclude"))
    by_dir: dict[str, list[str]] = {}
    for r in rels:
        by_dir.setdefault(posixpath.dirname(r), []).append(r)
    copies = []
    for d, fs in by_dir.items():
        target = posixpath.join(dest, d) if d else dest
        target = target if target.endswith("/") else target + "/"
        copies.append(
            " ".join(x for x in (broad.cmd if broad.cmd == "COPY" else "COPY", flags, *fs, target) if x)
        )
    # comment lines right above the broad COPY move with it
    top = broad.start
    while top > 1 and df.lines[top - 2].lstrip().startswith("#"):
        top -= 1
    moved = list(df.lines[top - 1 : broad.end])
    edits = [
        (top, broad.end, copies),
        (pip.end + 1, pip.end, moved),
    ]
    names = ", ".join(rels)
    return Rewrite(
        "order",
        _splice(df, edits),
        f"copy {names} and install before `{broad.original}` so a source edit keeps the install cached",
    )


# --------------------------------------------------------------------------- pip cache


def pip_cache_mount(df: Dockerfile, _ctx: ContextInfo) -> Rewrite | None:
    """`RUN --mount=type=cache,target=/root/.cache/pip` on pip installs run as root (keeps downloads between builds)."""
    users = _users(df)
    edits = []
    for k, ins in enumerate(df.instructions):
        if not _is_pip_install(ins) or not _is_root(users[k]):
            continue
        if any(f.startswith("--mount") and "cache" in f and ".cache/pip" in f for f in ins.flags):
            continue
        new = df.raw(ins)
        new[0] = re.sub(
            r"^(\s*RUN)(\s+)", rf"\1 --mount=type=cache,target={PIP_CACHE}\2", new[0], count=1, flags=re.I
        )
        new = [re.sub(r"[ \t]+--no-cache-dir(?=\s|$)", "", ln) for ln in new]
        edits.append((ins.start, ins.end, new))
    if not edits:
        return None
    return Rewrite(
        "pip-cache-mount",
        _splice(df, edits),
        f"cache mount on {len(edits)} pip install(s): downloads kept between builds, none left in the image",
    )


def pip_no_cache_dir(df: Dockerfile, _ctx: ContextInfo) -> Rewrite | None:
    """`pip install --no-cache-dir`: pip's download cache stays out of the image."""
    if any(i.cmd == "ENV" and "PIP_NO_CACHE_DIR" in i.text for i in df.instructions):
        return None
    edits = []
    for ins in df.instructions:
        if not _is_pip_install(ins) or "--no-cache-dir" in _run_text(ins):
            continue
        if any(f.startswith("--mount") and ".cache/pip" in f for f in ins.flags):
            continue
        new = [_PIP_INSTALL.sub(lambda m: m.group(0) + " --no-cache-dir", ln) for ln in df.raw(ins)]
        edits.append((ins.start, ins.end, new))
    if not edits:
        return None
    return Rewrite(
        "pip-no-cache-dir",
        _splice(df, edits),
        f"--no-cache-dir on {len(edits)} pip install(s): pip's cache stays out of the image",
    )


# --------------------------------------------------------------------------- slim base


def _apt_build_line(pkgs: str = "gcc libc6-dev") -> str:
    return (
        f"RUN apt-get update && apt-get install -y --no-install-recommends {pkgs} "
        "&& rm -rf /var/lib/apt/lists/*"
    )


def slim_base(df: Dockerfile, ctx: ContextInfo) -> Rewrite | None:
    """python:X -> python:X-slim on the final stage; gcc added before the installs when the build compiles."""
    froms = [i for i in df.instructions if i.cmd == "FROM"]
    last = froms[-1]
    image = _from_image(last)
    slim = slim_of(image)
    if slim is None or slim_of(_subst_args(image, df.global_args())) is None:
        return None
    new = _replace_word(df.lines[last.start - 1], image, slim)
    edits = [(last.start, last.start, [new])]
    why = _compiles(df, ctx, last.stage)
    first_pip = next((i for i in df.stage(last.stage) if _is_pip_install(i)), None)
    has_tools = any(_installs_build_tools(i) for i in df.stage(last.stage))
    if why and first_pip is not None and not has_tools:
        edits.append((first_pip.start, first_pip.start - 1, [_apt_build_line()]))
        reason = f"{image} -> {slim}, with gcc and libc6-dev added because {why}"
    elif why:
        reason = f"{image} -> {slim} ({why}, already installed by the Dockerfile)"
    else:
        reason = (
            f"{image} -> {slim}; no compile step seen (unsure: a requirement without a wheel would need gcc)"
        )
    return Rewrite("slim-base", _splice(df, edits), reason)


# --------------------------------------------------------------------------- multi-stage

_META = ("CMD", "ENTRYPOINT", "EXPOSE", "HEALTHCHECK", "USER", "LABEL", "STOPSIGNAL", "VOLUME", "ONBUILD")


def multi_stage(df: Dockerfile, _ctx: ContextInfo) -> Rewrite | None:
    """Single stage -> a builder stage that installs into a venv, copied into a slim final stage."""
    if df.stages != 1:
        return None
    frm = next(i for i in df.instructions if i.cmd == "FROM")
    image = _from_image(frm)
    body = [i for i in df.stage(0) if i.cmd != "FROM"]
    pips = [k for k, i in enumerate(body) if _is_pip_install(i)]
    if not pips or any(i.cmd == "USER" for i in body[: pips[-1]]):
        return None
    resolved = _subst_args(image, df.global_args())
    full = slim_of(resolved) is not None
    if not resolved.split(":")[0].endswith("python"):
        return None
    tools = [i for i in body if _installs_build_tools(i)]
    if not full and not tools:
        return None
    final_image = slim_of(image) if full else image
    nl = df.newline
    pre = list(df.lines[: frm.start - 1])
    env = f'ENV PATH="{VENV}/bin:$PATH"'
    builder = [f"FROM {image} AS builder", f"RUN python -m venv {VENV}", env]
    for i in body[: pips[-1] + 1]:
        if i.cmd in _META:
            continue
        raw = df.raw(i)
        if _is_pip_install(i):
            raw = [re.sub(r"[ \t]+--user(?=\s|$)", "", ln) for ln in raw]
        builder += raw
    final = ["", f"FROM {final_image}", f"COPY --from=builder {VENV} {VENV}", env]
    dropped = []
    for i in body:
        only_tools = _installs_build_tools(i) and all(BUILD_PACKAGES.match(p) for p in _apt_packages(i))
        if _is_pip_install(i) or only_tools:
            dropped.append(i)
            continue
        final += df.raw(i)
    text = nl.join([*pre, *builder, *final]) + (nl if df.text.endswith(("\n", "\r\n")) else "")
    what = "compiler and " if tools or full else ""
    libs = sorted(
        {
            p
            for i in dropped
            for p in _apt_packages(i)
            if p.endswith("-dev") and p not in ("libc6-dev", "libc-dev")
        }
    )
    unsure = f"; unsure: the runtime libraries of {', '.join(libs)} are not added" if libs else ""
    return Rewrite(
        "multi-stage",
        text,
        f"installs into {VENV} in a builder stage on {image}; the final stage on {final_image} "
        f"gets the venv only ({what}build files stay behind){unsure}",
    )


# --------------------------------------------------------------------------- exec form


def exec_form(df: Dockerfile, _ctx: ContextInfo) -> Rewrite | None:
    """Shell-form CMD/ENTRYPOINT of the final stage -> exec form, so the app is PID 1 and gets SIGTERM."""
    last = df.stages - 1
    edits = []
    for ins in df.stage(last):
        if ins.cmd not in ("CMD", "ENTRYPOINT") or ins.json or not ins.value:
            continue
        cmd = ins.text
        if _SHELL_META.search(cmd):
            continue
        argv = shlex.split(cmd)
        if not argv:
            continue
        edits.append((ins.start, ins.end, [f"{ins.cmd} {json.dumps(argv)}"]))
    if not edits:
        return None
    return Rewrite(
        "exec-form",
        _splice(df, edits),
        "CMD/ENTRYPOINT in exec form: the app is PID 1 and stops on SIGTERM instead of being killed",
    )


# --------------------------------------------------------------------------- non-root user


def non_root(df: Dockerfile, _ctx: ContextInfo) -> Rewrite | None:
    """A system user (uid 10001) and `USER` after the last build step of the final stage."""
    last = df.stages - 1
    stage = df.stage(last)
    users = [i for i in stage if i.cmd == "USER"]
    if users and not _is_root(users[-1].value[0] if users[-1].value else ""):
        return None
    base = _subst_args(_final_base(df), df.global_args()).lower()
    builds = [i for i in stage if i.cmd in ("FROM", "RUN", "COPY", "ADD", "WORKDIR")]
    anchor = builds[-1]
    name = base.split("/")[-1].split(":")[0].split("@")[0]
    if "alpine" in base:
        new = ["RUN addgroup -S -g 10001 app && adduser -S -D -u 10001 -G app app", "USER app"]
    elif name in ("python", "debian", "ubuntu", "node", "golang", "ruby", "openjdk", "eclipse-temurin"):
        new = [
            "RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --create-home app",
            "USER app",
        ]
    else:
        new = ["USER 10001:10001"]
    return Rewrite(
        "non-root",
        _splice(df, [(anchor.end + 1, anchor.end, new)]),
        "the app runs as uid 10001 instead of root",
    )


# --------------------------------------------------------------------------- .dockerignore

_IGNORE_DIRS = {
    ".git": ".git",
    ".hg": ".hg",
    ".pytest_cache": ".pytest_cache",
    ".mypy_cache": ".mypy_cache",
    ".ruff_cache": ".ruff_cache",
    ".tox": ".tox",
    ".idea": ".idea",
    ".vscode": ".vscode",
    "node_modules": "node_modules",
    "tests": "tests",
    "test": "test",
}


def _copied_sources(df: Dockerfile) -> set[str]:
    out: set[str] = set()
    for i in df.instructions:
        if i.cmd in ("COPY", "ADD") and not any(f.startswith("--from") for f in i.flags):
            out.update(posixpath.normpath(s).split("/")[0] for s in i.value[:-1])
    return out


def dockerignore(df: Dockerfile, ctx: ContextInfo) -> Rewrite | None:
    """A .dockerignore for what the context holds and the image does not need (.git, caches, venvs, .env, tests)."""
    named = _copied_sources(df)
    uses_tests = any(
        i.cmd == "RUN" and re.search(r"\b(pytest|unittest|tox)\b", i.text) for i in df.instructions
    )
    want: list[str] = []
    top_dirs = {d for d in ctx.dirs if "/" not in d}
    for d in sorted(top_dirs):
        if d in _IGNORE_DIRS and d not in named and not (d in ("tests", "test") and uses_tests):
            want.append(_IGNORE_DIRS[d])
        elif f"{d}/pyvenv.cfg" in ctx.files and d not in named:
            want.append(d)
        elif d.endswith(".egg-info"):
            want.append("*.egg-info")
    if any(d.split("/")[-1] == "__pycache__" for d in ctx.dirs):
        want += ["**/__pycache__", "**/*.py[co]"]
    for f in ctx.files:
        if "/" not in f and (f == ".env" or f.startswith(".env.")) and f not in named:
            want.append(".env*" if f != ".env" else ".env")
    existing = ctx.texts.get(".dockerignore", "")
    have = {ln.strip().rstrip("/") for ln in existing.splitlines()}
    want = [w for k, w in enumerate(want) if w not in have and w not in want[:k]]
    if not want:
        return None
    head = existing.rstrip("\n") + "\n" if existing.strip() else ""
    text = head + "# added by imagebench advise\n" + "\n".join(want) + "\n"
    return Rewrite(
        "dockerignore",
        df.text,
        "a .dockerignore leaving out " + ", ".join(want),
        dockerignore=text,
    )


# --------------------------------------------------------------------------- layer cleanup


def apt_cleanup(df: Dockerfile, _ctx: ContextInfo) -> Rewrite | None:
    """apt-get install with --no-install-recommends, and the apt lists removed in the same RUN."""
    edits, did = [], set()
    for ins in df.instructions:
        if ins.cmd != "RUN" or not _APT_INSTALL.search(_run_text(ins)):
            continue
        new = df.raw(ins)
        t = _run_text(ins)
        if "--no-install-recommends" not in t and "no-install-recommends" not in t:
            new = [_APT_INSTALL.sub(lambda m: m.group(0) + " --no-install-recommends", ln) for ln in new]
            did.add("--no-install-recommends")
        if "/var/lib/apt/lists" not in t:
            if ins.heredoc:
                new.insert(len(new) - 1, "rm -rf /var/lib/apt/lists/*")
            else:
                new[-1] = new[-1].rstrip() + " && rm -rf /var/lib/apt/lists/*"
            did.add("apt lists removed in the same RUN")
        if new != df.raw(ins):
            edits.append((ins.start, ins.end, new))
    if not edits:
        return None
    return Rewrite("apt-cleanup", _splice(df, edits), ", ".join(sorted(did)) + f" ({len(edits)} RUN)")


# --------------------------------------------------------------------------- all of them

PRACTICES: dict[str, Callable[[Dockerfile, ContextInfo], Rewrite | None]] = {
    "order": order,
    "pip-cache-mount": pip_cache_mount,
    "pip-no-cache-dir": pip_no_cache_dir,
    "slim-base": slim_base,
    "multi-stage": multi_stage,
    "exec-form": exec_form,
    "non-root": non_root,
    "dockerignore": dockerignore,
    "apt-cleanup": apt_cleanup,
}


def select(only: list[str] | None) -> list[str]:
    if not only:
        return list(PRACTICES)
    unknown = [n for n in only if n not in PRACTICES]
    if unknown:
        raise UsageError(f"unknown practice {', '.join(unknown)}; known: {', '.join(PRACTICES)}")
    return [n for n in PRACTICES if n in only]


def rewrites(df: Dockerfile, ctx: ContextInfo, only: list[str] | None = None) -> list[Rewrite]:
    """Every selected practice that applies, in catalog order."""
    out = []
    for name in select(only):
        r = PRACTICES[name](df, ctx)
        if r is not None:
            out.append(r)
    return out
