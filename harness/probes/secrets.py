"""secrets: where a secret ends up, depending on how it was handed to the build or the container.

A fresh canary (`secrets.token_hex`) per trial is injected the way the variant says
(`run = { inject = "..." }` in experiment.toml):

  env         build argument API_TOKEN, copied into `ENV API_TOKEN=$API_TOKEN`
  arg         build argument API_TOKEN, used by a RUN step
  arg-stage   build argument API_TOKEN, used only in a builder stage the final image does not keep
  mount       `RUN --mount=type=secret,id=api_token` (file in the trial's private workdir)
  runtime-env `docker run -e API_TOKEN=...` of the built (clean) image
  swarm       a Swarm secret mounted into a service's task (single-node swarm on the lab engine)

Then it searches the places an attacker with the image (or with the engine API) can read:
`image_config` (inspect), `history` (CreatedBy), each layer tarball of `docker save`
(`layer N`), and for run-time variants `container_inspect`, `service_inspect`, `secret_inspect`.
For build-time variants it also rebuilds (cached) and looks at BuildKit's step names, which are
what a CI log shows: RUN lines are printed with build arguments substituted
(secret_in_build_output; not counted in secret_leaks, which counts places in the image and the
engine API).

secret_leaks     number of places (image, history, layers, inspect) where the canary was found
secret_in_build_output  1 when the build's step names (what a CI log shows) contain it
secret_delivered 1 when the build step / container really received the secret (compared by
                 SHA-256, so a "0 leaks" cannot come from a secret that never arrived)

The canary goes into BuildExtras.redact and ctx.redact; it is never put into metrics, probe_data
or exception text (messages are scrubbed before they leave the probe).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets as pysecrets
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.engine.inspect import HistoryEntry, ImageAttrs
from harness.errors import ProbeFailed, UsageError
from harness.probes import BuildExtras, Probe, ProbeContext, register
from harness.probes._containers import file_from_image
from harness.probes.layers import save_image, stream_contains

INJECTIONS = ("env", "arg", "arg-stage", "mount", "runtime-env", "swarm")
BUILD_ARG = "API_TOKEN"
SECRET_ID = "api_token"
HASH_FILE = "/app/token.sha256"
SWARM_TIMEOUT = 60.0


def scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "<redacted>") if secret else text


def find_places(
    canary: str,
    *,
    config: Mapping[str, object] | None = None,
    history: list[HistoryEntry] | None = None,
    layer_hits: list[int] | None = None,
    inspected: Mapping[str, object] | None = None,
) -> list[str]:
    """Pure: the names of the places holding the canary (never the canary itself)."""
    places: list[str] = []
    if config is not None and canary in json.dumps(config):
        places.append("image_config")
    if history is not None and any(canary in (h.get("CreatedBy") or "") for h in history):
        places.append("history")
    places += [f"layer {i}" for i in layer_hits or []]
    for name, obj in (inspected or {}).items():
        if obj is not None and canary in json.dumps(obj):
            places.append(name)
    return places


def in_build_output(names: list[str], canary: str, min_prefix: int = 16) -> int:
    """Pure: how many build step names (BuildKit progress output, i.e. CI logs) show the canary.

    BuildKit prints RUN lines with build arguments substituted and truncates long names, so a
    leading part of the canary counts too."""
    head = canary[:min_prefix]
    return sum(1 for n in names if canary in n or head in n)


def config_keys_with(canary: str, config: ImageAttrs) -> list[str]:
    """Pure: which keys of an image's Config (Env, Labels, Cmd, ...) hold the canary."""
    cfg = config.get("Config") or {}
    return sorted(k for k, v in cfg.items() if canary in json.dumps(v))


def layers_with(saved: Any, needle: bytes) -> list[int]:
    hits = []
    for i, name in enumerate(saved.layers):
        with saved.open(name) as fh:
            if stream_contains(fh, needle):
                hits.append(i)
    return hits


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@register
class SecretsProbe(Probe):
    name = "secrets"

    def __init__(self) -> None:
        self._canary: str | None = None
        self._containers: list[str] = []
        self._service: Any = None
        self._secret: Any = None
        self._swarm_initialised = False
        self._gwbridge_existed = True
        self._secret_file: Path | None = None

    # ---------------------------------------------------------------- lifecycle
    def _inject(self, ctx: ProbeContext) -> str:
        how: str = (ctx.variant.run or {}).get("inject", "")
        if how not in INJECTIONS:
            raise UsageError(
                f"experiment {ctx.experiment.name}, variant {ctx.variant.name}: run.inject must be one "
                f"of {', '.join(INJECTIONS)} (got {how!r})"
            )
        return how

    def before_build(self, ctx: ProbeContext) -> BuildExtras:
        how = self._inject(ctx)
        self._canary = "ibcanary" + pysecrets.token_hex(16)
        ctx.redact.add(self._canary)
        extras = BuildExtras(redact={self._canary})
        if how in ("env", "arg", "arg-stage"):
            extras.build_args[BUILD_ARG] = self._canary
        elif how == "mount":
            self._secret_file = ctx.workdir / "api_token.secret"  # outside the context directory
            self._secret_file.write_text(self._canary)
            self._secret_file.chmod(0o600)
            extras.secrets.append(f"id={SECRET_ID},src={self._secret_file}")
        return extras

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        try:
            return self._measure(ctx)
        except (ProbeFailed, UsageError) as exc:
            exc.message = scrub(exc.message, self._canary)
            raise
        except Exception as exc:  # noqa: BLE001 - docker errors may quote arguments: scrub before anything sees them
            raise ProbeFailed(
                f"secrets probe: {scrub(f'{type(exc).__name__}: {exc}', self._canary)}"
            ) from None

    def _measure(self, ctx: ProbeContext) -> dict[str, float]:
        if not ctx.image or not self._canary:
            return {}
        how = self._inject(ctx)
        canary = self._canary
        digest = hashlib.sha256(canary.encode()).hexdigest()
        client = ctx.client
        attrs = client.api.inspect_image(ctx.image)
        history = client.api.history(ctx.image)
        tar = ctx.workdir / "secrets-save.tar"
        try:
            saved = save_image(client, ctx.image, tar)
            hits = layers_with(saved, canary.encode())
            nlayers = len(saved.layers)
        finally:
            tar.unlink(missing_ok=True)
        inspected: dict[str, object] = {}
        delivered: bool | None = None
        notes: list[str] = []
        if how in ("env", "arg", "arg-stage", "mount"):
            got = file_from_image(client, ctx.image, HASH_FILE, ctx.labels, ctx.track)
            delivered = bool(got and got.decode(errors="replace").split()[0] == digest)
        elif how == "runtime-env":
            delivered, inspected = self._runtime_env(ctx, canary, digest)
        elif how == "swarm":
            delivered, inspected, note = self._swarm(ctx, canary, digest)
            if note:
                notes.append(note)
        places = find_places(canary, config=attrs, history=history, layer_hits=hits, inspected=inspected)
        output_hits = 0
        if how in ("env", "arg", "arg-stage", "mount") and ctx.build is not None:
            # the same build again (cached): what its progress output, i.e. a CI log, shows
            res = ctx.build()
            if res.ok:
                output_hits = in_build_output([st.name for st in res.events.steps], canary)
        ctx.details[self.name] = {
            "inject": how,
            "places": places,
            "config_keys": config_keys_with(canary, attrs),
            "history_entries_hit": sum(1 for h in history if canary in (h.get("CreatedBy") or "")),
            "layers_hit": len(hits),
            "layers_total": nlayers,
            "build_output_steps_hit": output_hits,
            "searched": ["image_config", "history", "layers", *inspected],
            "delivered": delivered,
            **({"notes": notes} if notes else {}),
        }
        out = {"secret_leaks": float(len(places))}
        if how in ("env", "arg", "arg-stage", "mount"):
            out["secret_in_build_output"] = 1.0 if output_hits else 0.0
        if delivered is not None:
            out["secret_delivered"] = 1.0 if delivered else 0.0
        return out

    # ---------------------------------------------------------------- run time
    def _runtime_env(self, ctx: ProbeContext, canary: str, digest: str) -> tuple[bool, dict[str, object]]:
        c = ctx.client.containers.run(
            ctx.image,
            entrypoint=["sleep"],
            command=["300"],
            detach=True,
            environment={BUILD_ARG: canary},
            labels=ctx.labels,
            network_disabled=True,
        )
        self._containers.append(c.id)
        ctx.track("container", c.id)
        res = c.exec_run(["sh", "-c", f'printf %s "${BUILD_ARG}" | sha256sum'])
        delivered = res.exit_code == 0 and res.output.decode(errors="replace").split()[:1] == [digest]
        return delivered, {"container_inspect": ctx.client.api.inspect_container(c.id)}

    def _swarm(
        self, ctx: ProbeContext, canary: str, digest: str
    ) -> tuple[bool | None, dict[str, object], str]:
        import docker.types  # lazy: the docker SDK costs ~0.8 s to import, and every probe module is loaded to list them

        client = ctx.client
        state = (client.info().get("Swarm") or {}).get("LocalNodeState", "inactive")
        if state == "inactive":
            self._gwbridge_existed = bool(client.networks.list(names=["docker_gwbridge"]))
            client.swarm.init(advertise_addr="127.0.0.1", listen_addr=f"127.0.0.1:{_free_port()}")
            self._swarm_initialised = True
        elif state != "active":
            return None, {}, f"swarm state {state!r}: not measured"
        elif not (client.info().get("Swarm") or {}).get("ControlAvailable"):
            return None, {}, "this engine is a swarm worker, not a manager: not measured"
        name = f"imagebench-{ctx.nonce}-{SECRET_ID}"
        self._secret = client.secrets.create(name=name, data=canary.encode(), labels=ctx.labels)
        self._service = client.services.create(
            ctx.image,
            command=["sleep"],
            args=["300"],
            name=f"imagebench-secrets-{ctx.nonce}",
            labels=ctx.labels,
            container_labels=ctx.labels,
            secrets=[docker.types.SecretReference(self._secret.id, name, filename=SECRET_ID)],
            restart_policy=docker.types.RestartPolicy(condition="none"),
        )
        cid = None
        deadline = time.monotonic() + SWARM_TIMEOUT
        while time.monotonic() < deadline and cid is None:
            for t in self._service.tasks():
                st = t.get("Status") or {}
                if st.get("State") == "running":
                    cid = (st.get("ContainerStatus") or {}).get("ContainerID")
                elif st.get("State") in ("failed", "rejected"):
                    raise ProbeFailed(f"swarm task {st.get('State')}: {st.get('Err', '')}")
            if cid is None:
                time.sleep(0.5)
        if cid is None:
            raise ProbeFailed(f"swarm task not running after {SWARM_TIMEOUT:.0f} s")
        c = client.containers.get(cid)
        res = c.exec_run(["sha256sum", f"/run/secrets/{SECRET_ID}"])
        delivered = res.exit_code == 0 and res.output.decode(errors="replace").split()[:1] == [digest]
        inspected = {
            "container_inspect": client.api.inspect_container(cid),
            "service_inspect": client.api.inspect_service(self._service.id),
            "secret_inspect": client.api.inspect_secret(self._secret.id),
        }
        return delivered, inspected, ""

    def cleanup(self, ctx: ProbeContext) -> None:
        client = ctx.client
        for cid in self._containers:
            with contextlib.suppress(Exception):
                client.api.remove_container(cid, force=True, v=True)
        if self._service is not None:
            with contextlib.suppress(Exception):
                self._service.remove()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # the secret can go only once the task's container is gone
                with contextlib.suppress(Exception):
                    if not client.containers.list(
                        all=True, filters={"label": f"com.docker.swarm.service.id={self._service.id}"}
                    ):
                        break
                time.sleep(0.3)
        if self._secret is not None:
            with contextlib.suppress(Exception):
                self._secret.remove()
        if self._swarm_initialised:
            with contextlib.suppress(Exception):
                client.swarm.leave(force=True)
            if not self._gwbridge_existed:
                with contextlib.suppress(Exception):
                    for n in client.networks.list(names=["docker_gwbridge"]):
                        n.remove()
            self._swarm_initialised = False
        if self._secret_file is not None:
            self._secret_file.unlink(missing_ok=True)
        self._containers, self._service, self._secret = [], None, None
