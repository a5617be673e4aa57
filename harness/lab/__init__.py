"""The controlled lab: stand-in bases, local package index, apt proxy, registry, network profile.

Public API (the runner and the CLI use exactly these):

    lab_up(profile="unlimited", bases="lab", progress=print) -> LabStatus
    lab_status() -> LabStatus
    lab_down() -> LabDown      # the shapes are harness.lab.state's TypedDicts
    load_lab() -> Lab      # LabError "lab is not up: run `imagebench lab up`"
    Lab.build_args(), .resolve_base(name) -> BaseRef, .registry, .index_url, .index_stats(),
    .reset_index_stats(), .profile, .check_alive(), .fingerprint(), .push(image_ref, repo)
    compressed_bytes(ref) -> (manifest_digest, [layer sizes])
"""

from harness.lab.core import BaseRef, Lab, Profile, lab_down, lab_status, lab_up, load_lab
from harness.lab.registry import compressed_bytes
from harness.lab.shaper import PROFILES

__all__ = [
    "PROFILES",
    "BaseRef",
    "Lab",
    "Profile",
    "compressed_bytes",
    "lab_down",
    "lab_status",
    "lab_up",
    "load_lab",
]
