"""How each framework names a backend: the ``[[backend.frameworks]]`` entries of backends.toml.

A backend record says, per framework, the value of that framework's own knob that selects it:
diffusers' ``set_attention_backend`` name, vLLM's ``--attention-backend`` value (plus its
``flash_attn_version``), SGLang's ``--attention-backend`` choice, ComfyUI's ``--use-*`` flag.
Each name holds for a range of the framework's versions and names its upstream source. The
transformers name is the record's ``attn_implementation`` (it stays the one source of it).

A backend with no entry for a framework is not something that framework can use: the one
decision (``attn_doctor.decide.rank``) never offers it there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from attn_doctor.datafiles import Entry

FrameworkName = Literal["transformers", "diffusers", "vllm", "sglang", "comfyui"]
FRAMEWORK_NAMES: tuple[FrameworkName, ...] = get_args(FrameworkName)

_KEYS = frozenset(
    {"framework", "name", "extra", "versions", "devices", "bundled", "default", "source",
     "verified"}
)  # fmt: skip
Device = Literal["cuda", "rocm", "cpu"]
DEVICES: tuple[Device, ...] = get_args(Device)


@dataclass(frozen=True, kw_only=True)
class FrameworkEntry:
    """One framework's name for one backend."""

    framework: FrameworkName
    name: str
    """The knob's value: ``FLASH_ATTN``, ``_native_cudnn``, ``fa3``, ``--use-sage-attention``."""
    extra: tuple[tuple[str, str], ...] = ()
    """More settings the knob needs, e.g. vLLM's ``("flash_attn_version", "3")``."""
    versions: str = ""
    """The framework versions this name holds for (a specifier; empty: all)."""
    devices: tuple[Device, ...] = ()
    """Where the framework can run it (empty: wherever the backend itself runs)."""
    bundled: bool = False
    """The framework ships the kernel itself (vLLM's ``vllm_flash_attn``, SGLang's
    sglang-kernel): the backend's own package is neither needed nor used there."""
    default: bool = False
    """The framework uses it by itself whenever it is importable (ComfyUI and xformers)."""
    source: str
    verified: bool

    def holds_for(self, version: str | None) -> bool:
        """True when the name holds for this framework version (unknown version: it does)."""
        if not self.versions or version is None:
            return True
        try:
            return SpecifierSet(self.versions).contains(Version(version).public, prereleases=True)
        except InvalidVersion:
            return True

    def runs_on(self, device: Device | None) -> bool:
        """True when the framework uses this name on that device (None: any device)."""
        return device is None or not self.devices or device in self.devices

    def setting(self, key: str) -> str | None:
        for k, v in self.extra:
            if k == key:
                return v
        return None


def parse_framework_entries(e: Entry) -> tuple[FrameworkEntry, ...]:
    """The ``frameworks`` sub-tables of one backend record, validated."""
    if "frameworks" not in e.data:
        return ()
    out: list[FrameworkEntry] = []
    for f in e.tables("frameworks"):
        f.only(_KEYS)
        framework = f.str_("framework")
        if framework not in FRAMEWORK_NAMES:
            raise f.fail("framework", f"{framework!r} is not one of {', '.join(FRAMEWORK_NAMES)}")
        if framework == "transformers":
            raise f.fail("framework", "the transformers name is the record's attn_implementation")
        name = f.str_("name")
        if not name.strip():
            raise f.fail("name", "must not be empty")
        versions = f.specifier("versions") if "versions" in f.data else ""
        extra_raw = f.data.get("extra", {})
        if not isinstance(extra_raw, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in extra_raw.items()
        ):
            raise f.fail("extra", "expected a table of strings")
        source, verified = f.provenance()
        entry = FrameworkEntry(
            framework=framework,
            name=name,
            extra=tuple(sorted(extra_raw.items())),
            versions=versions,
            devices=tuple(d for d in DEVICES if d in f.strs("devices", allowed=DEVICES)),
            bundled=f.bool_("bundled", default=False),
            default=f.bool_("default", default=False),
            source=source,
            verified=verified,
        )
        out.append(entry)
    return tuple(out)
