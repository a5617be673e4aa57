"""Base images: every public base name a run uses is resolved once and its lab image id pinned.

A base that moves during a run (or between a run and its resume) stops the run: trials measured
on two different bases would be pooled as one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import docker.errors

from harness import pyversions
from harness.engine.dockerfile import base_images, read_dockerfile
from harness.errors import LabError
from harness.experiment import Experiment, Variant
from harness.records import BasePin, LabHandle
from harness.results import Run


class BasePins:
    """Public base name -> {public, lab_tag, image_id, bytes, provenance}, recorded in the run's `bases`."""

    def __init__(
        self, lab: LabHandle, client: Any, run: Run, python_substitute: str, say: Callable[[str], None]
    ) -> None:
        self.lab = lab
        self.client = client
        self.run = run
        self.python_substitute = python_substitute
        self.say = say
        self.pins: dict[str, BasePin] = {}

    def pin_all(
        self, experiments: list[Experiment], unmet: Callable[[Experiment, Variant], str | None]
    ) -> None:
        """Resolve every base of every measurable variant once; on resume, check none moved."""
        recorded = self.run.data.setdefault("bases", {})
        for exp in experiments:
            for v in exp.variants:
                if unmet(exp, v):
                    continue
                text = read_dockerfile(exp.file(v.dockerfile))
                for name in base_images(text, v.build_args):
                    if name in self.pins:
                        continue
                    pin = self.resolve(name)
                    if name in recorded and recorded[name]["image_id"] != pin["image_id"]:
                        raise LabError(
                            f"base {name} moved since this run started ({recorded[name]['image_id'][:19]} -> "
                            f"{pin['image_id'][:19]})",
                            hint="start a new run",
                        )
                    recorded[name] = pin
                    self.pins[name] = pin

    def resolve(self, name: str) -> BasePin:
        """A public name through the lab's mapping; an image that exists locally (a user's own base) as is."""
        try:
            ref, py_note = pyversions.resolve(self.lab, name, self.python_substitute)
        except LabError as exc:
            try:
                attrs = self.client.api.inspect_image(name)
            except docker.errors.ImageNotFound:
                raise exc from None
            return {
                "public": name,
                "lab_tag": name,
                "image_id": attrs["Id"],
                "bytes": attrs.get("Size"),
                "provenance": {"source": "local image", "note": "not a lab stand-in; used as found"},
            }
        if py_note:  # said before the first build, kept in the run file and the report
            self.say(f"warning: {py_note['message']}")
            self.run.warn(py_note["message"])
            self.run.data.setdefault("python_substitutions", {})[name] = py_note
        return {
            "public": name,
            "lab_tag": ref.lab_tag,
            "image_id": ref.image_id,
            "bytes": ref.bytes,
            "provenance": {**ref.provenance, **({"python_substitution": py_note} if py_note else {})},
        }

    def build_contexts(self, text: str, build_args: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """The `--build-context` of each pinned base (checked unchanged) and {name: image id} used."""
        contexts, used = {}, {}
        for name in base_images(text, build_args):
            pin = self.pins.get(name)
            if pin is None:
                pin = self.pins[name] = self.resolve(name)
            current = self.client.api.inspect_image(pin["lab_tag"])["Id"]
            if current != pin["image_id"]:
                raise LabError(
                    f"base {name} ({pin['lab_tag']}) changed during the run; pinned {pin['image_id'][:19]}"
                )
            if pin["lab_tag"] != name:
                contexts[name] = f"docker-image://{pin['lab_tag']}"
            used[name] = pin["image_id"]
        return contexts, used

    def substitution_hint(self, used: dict[str, str]) -> str:
        """What a failed build's error adds when a base was a Python substitution ('' otherwise)."""
        subs = [self.pins[n]["provenance"].get("python_substitution") for n in used]
        return pyversions.failure_hint([x for x in subs if x])
