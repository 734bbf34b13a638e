"""Resources of the code location: storage, LanceDB, encoders, text encoder, trainer launcher.

Each is a small `ConfigurableResource` over a `mediafm_core` object; `build_resources()` picks them
for a deployment in ONE place (DESIGN.md Storage; STYLE.md 9). Secrets come from `EnvVar` only.
"""

from __future__ import annotations

import os

from dagster import ConfigurableResource, EnvVar, PipesSubprocessClient
from pydantic import Field

from mediafm_core.storage.layout import StorageLayout, default_root, is_remote

LATEST = "LATEST"  # file under <root>/checkpoints naming the current model_version


class StorageResource(ConfigurableResource):
    """The storage root (local folder or s3://bucket/prefix) and the landing zone in it."""

    root: str = Field(description="Storage root: a folder or s3://bucket/prefix")
    landing: str = Field(default="", description="Landing zone; empty = <root>/landing")
    settle_s: int = Field(
        default=0,
        description="Arrival sensor: act on a title only once "
        "its newest file is this many seconds old (copies still running)",
    )
    retire_after_s: int = Field(
        default=3600,
        description="Retirement sensor: retire a "
        "title whose landing folder has been gone this long, seconds",
    )

    def layout(self) -> StorageLayout:
        return StorageLayout(self.root)

    def landing_root(self) -> str:
        return self.landing or self.layout().landing

    def local_landing(self, title_ids) -> str:
        """A local landing root holding these titles: the landing zone itself when it is a
        folder; for s3:// a cache folder the titles are downloaded to once (decoders need files)."""
        from mediafm_core.storage.s3 import local_landing_root

        return local_landing_root(self.landing_root(), list(title_ids))

    def setup_for_execution(self, context) -> None:
        """Fail at the first step with ONE clear error when an s3:// root or landing zone is
        unusable (endpoint down, wrong credentials, missing bucket); nothing is written first."""
        from mediafm_core.storage.s3 import check_storage_root

        for uri in dict.fromkeys([self.root, self.landing_root()]):
            check_storage_root(uri)

    def checkpoint_dir(self, model_version: str) -> str:
        return f"{self.layout().checkpoints}/{model_version}"

    def current_model_version(self) -> str | None:
        """The model_version named by checkpoints/LATEST, or None before the first training."""
        from upath import UPath

        latest = UPath(self.layout().checkpoints) / LATEST
        return latest.read_text().strip() if latest.exists() else None

    def has_checkpoint(self) -> bool:
        return self.current_model_version() is not None

    def checkpoint_for(self, model_version: str) -> str | None:
        """The checkpoint folder whose config.json names `model_version` (a content hash), or
        None (an embedding space's checkpoint, e.g. the serving one during a migration)."""
        import json

        from upath import UPath

        folder = UPath(self.layout().checkpoints)
        if not folder.exists():
            return None
        for sub in sorted(folder.iterdir(), key=lambda p: p.name, reverse=True):
            config = sub / "config.json"
            if not sub.name.startswith(".") and config.exists():
                if json.loads(config.read_text()).get("model_version") == model_version:
                    return sub.name
        return None

    def set_current(self, model_version: str) -> None:
        """Point LATEST at a checkpoint (write-then-rename locally; one PUT on S3)."""
        from upath import UPath

        folder = UPath(self.layout().checkpoints)
        folder.mkdir(parents=True, exist_ok=True)
        if is_remote(self.root):
            (folder / LATEST).write_text(model_version)
            return
        tmp = folder / f".{LATEST}.tmp"
        tmp.write_text(model_version)
        tmp.rename(folder / LATEST)


class LanceDBResource(ConfigurableResource):
    """The LanceDB tables shot_embeddings / title_embeddings and their ANN index policy."""

    uri: str = Field(description="LanceDB folder: <root>/lancedb")
    index_min_rows: int = Field(default=100_000, description="Build the ANN index at this size")
    index_type: str = Field(default="IVF_SQ", description="IVF_SQ | IVF_PQ | IVF_HNSW_SQ")
    retain_versions_s: int = Field(
        default=3600,
        description="Index upkeep removes table "
        "versions older than this, seconds (longer than the "
        "longest query that may hold an old snapshot)",
    )
    metadata_cache_mb: int = Field(
        default=128, description="Lance metadata cache cap, MiB (manifests, fragment metadata)"
    )
    index_cache_mb: int = Field(
        default=512,
        description="Lance index cache cap, MiB (IVF "
        "partitions and scalar index pages of searches)",
    )

    def store(self):
        from mediafm_core.storage.lance_store import LanceStore, LanceStoreConfig

        return LanceStore(
            LanceStoreConfig(
                self.uri,
                self.index_min_rows,
                self.index_type,
                retain_versions_s=self.retain_versions_s,
                metadata_cache_mb=self.metadata_cache_mb,
                index_cache_mb=self.index_cache_mb,
            )
        )


class TextEncoderResource(ConfigurableResource):
    """Offline sentence-transformers (default) or OpenAI; the key only through EnvVar."""

    kind: str = Field(default="sentence-transformers", description="sentence-transformers|openai")
    model: str | None = Field(default=None, description="Model name; None = the kind's default")
    dimensions: int = Field(default=768, description="openai: output width")
    base_url: str | None = Field(default=None, description="openai: compatible base URL")
    api_key: str | None = Field(default=None, description="openai: EnvVar('OPENAI_API_KEY')")

    def config(self):
        from mediafm_core.encoders.text import TextEncoderConfig

        return TextEncoderConfig(
            kind=self.kind, model=self.model, dimensions=self.dimensions, base_url=self.base_url
        )

    def key(self) -> tuple:
        return (self.kind, self.model, self.dimensions, self.base_url)

    def load(self):
        """The text encoder alone (title metadata needs no video/audio models); reuses the one
        inside a loaded `Encoders` bundle when there is one."""
        for key, bundle in _ENCODERS.items():
            if key[3:] == self.key():
                return bundle.text
        if self.key() not in _TEXT:
            _TEXT.clear()
            _TEXT[self.key()] = self.build()
        return _TEXT[self.key()]

    def build(self):
        from mediafm_core.encoders.text import OpenAITextEncoder, make_text_encoder

        if self.kind != "openai":
            return make_text_encoder(self.config())
        from mediafm_core.encoders.text import make_openai_client

        client = make_openai_client(self.config(), api_key=self.api_key)  # it retries itself
        return OpenAITextEncoder(self.config(), client=client)


class EncoderResource(ConfigurableResource):
    """Encoder profile (offline, the default: packaged pretrained weights | paper | test-tiny,
    random-init, for tests) and device; models load once per process."""

    profile: str = Field(default="offline", description="Encoder profile name")
    device: str = Field(default="auto", description="auto | cpu | cuda")
    frames_per_shot: int = Field(default=0, description="Frames per shot; 0 = profile default")
    shot_detector: str = Field(default="auto", description="Shot detector passed to detect_shots")

    def load(self, text: TextEncoderResource):
        """The loaded `Encoders` bundle, cached for the process (several titles, one load)."""
        key = (self.profile, self.device, self.frames_per_shot, *text.key())
        if key not in _ENCODERS:
            _ENCODERS.clear()  # one bundle at a time: models are large
            _ENCODERS[key] = _load_encoders(self.profile, self.device, self.frames_per_shot, text)
        return _ENCODERS[key]


_ENCODERS: dict[tuple, object] = {}  # process-wide cache of the loaded Encoders bundle
_TEXT: dict[tuple, object] = {}  # process-wide cache of a text encoder loaded on its own


def _load_encoders(profile: str, device: str, frames_per_shot: int, text: TextEncoderResource):
    import dataclasses

    from mediafm_core.encoders.audio import make_audio_encoder
    from mediafm_core.encoders.profiles import Encoders, get_profile
    from mediafm_core.encoders.video import make_video_encoder

    p = get_profile(profile).with_device(None if device == "auto" else device)
    p = dataclasses.replace(p, text=dataclasses.replace(text.config(), device=p.text.device))
    if frames_per_shot:
        p = dataclasses.replace(p, frames_per_shot=frames_per_shot)
    return Encoders(p, make_video_encoder(p.video), make_audio_encoder(p.audio), text.load())


class TrainerLauncherResource(ConfigurableResource):
    """How `encoder_checkpoint` runs the trainer: Pipes subprocess (default), in process, or a
    Kubernetes GPU pod through Pipes (`k8s`).

    `pipes` launches `mediafm_assets/pretraining/pipes_trainer.py`; with `nproc_per_node` > 1 (or
    0 = one per visible GPU, when there are several) it runs under `torchrun --nproc-per-node N`.
    `k8s` submits the same command in a pod of `image` asking for `nproc_per_node` GPUs
    (`PipesK8sClient`, pretraining/k8s.py); the storage root must then be s3://.
    """

    mode: str = Field(default="pipes", description="pipes | in_process | k8s")
    nproc_per_node: int = Field(default=0, description="0 = number of GPUs (1 without GPUs)")
    python: str = Field(default="", description="Interpreter for the trainer; empty = this one")
    image: str = Field(default="", description="k8s: trainer image (infra/Dockerfile, cuda)")
    namespace: str = Field(default="", description="k8s: namespace; empty = the current one")
    gpu_resource: str = Field(default="nvidia.com/gpu", description="k8s: GPU resource name")
    node_selector: dict[str, str] = Field(
        default={"mediafm/pool": "gpu"}, description="k8s: nodes of the GPU pool"
    )
    env_secret: str = Field(default="mediafm-env", description="k8s: Secret with the env")
    cpu: str = Field(default="8", description="k8s: CPU request of the trainer pod")
    memory: str = Field(default="64Gi", description="k8s: memory request and limit")

    def processes(self) -> int:
        if self.nproc_per_node > 0:
            return self.nproc_per_node
        if self.mode == "k8s":  # the pod's GPUs cannot be counted from here
            return 1
        import torch

        return max(1, torch.cuda.device_count())


def setting(name: str, default, kind=str):
    """A resource field from the environment variable `name`: `EnvVar(name)` when it is set,
    so its value is read when a run or sensor tick starts (and the UI shows the variable's
    name, not its value); `default` when it is not set."""
    if os.environ.get(name) in (None, ""):
        return default
    return EnvVar.int(name) if kind is int else EnvVar(name)


def build_resources(root: str | None = None, deployment: str | None = None) -> dict:
    """Every resource for a deployment: `local` (default; offline encoders) or `openai`
    (OpenAI text encoder, key from OPENAI_API_KEY). The root is `$MEDIAFM_ROOT` or .demo/storage."""
    from mediafm_assets.io_manager import TitleParquetIOManagerFactory

    root = root or default_root()
    deployment = deployment or os.environ.get("MEDIAFM_DEPLOYMENT", "local")
    text = TextEncoderResource()
    if deployment == "openai":
        text = TextEncoderResource(
            kind="openai", model="text-embedding-3-large", api_key=EnvVar("OPENAI_API_KEY")
        )
    return {
        "storage": StorageResource(
            root=root,
            landing=setting("MEDIAFM_LANDING", ""),
            settle_s=setting("MEDIAFM_LANDING_SETTLE_S", 0, int),
            retire_after_s=setting("MEDIAFM_RETIRE_AFTER_S", 3600, int),
        ),
        "lancedb": LanceDBResource(
            uri=StorageLayout(root).lancedb,
            retain_versions_s=setting("MEDIAFM_LANCE_RETAIN_S", 3600, int),
        ),
        # the profile decides the per-title assets' code versions (definitions.code_versions),
        # so it is read when the code location loads: a change is a reload, which shows stale
        "encoders": EncoderResource(profile=os.environ.get("MEDIAFM_ENCODER_PROFILE", "offline")),
        "text_encoder": text,
        "trainer": TrainerLauncherResource(
            mode=setting("MEDIAFM_TRAINER", "pipes"),
            nproc_per_node=setting("MEDIAFM_TRAIN_GPUS", 0, int),
            image=setting("MEDIAFM_TRAINER_IMAGE", ""),
        ),
        "pipes_subprocess_client": PipesSubprocessClient(),
        "io_manager": TitleParquetIOManagerFactory(root=root),
    }
