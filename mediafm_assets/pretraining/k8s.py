"""`encoder_checkpoint` on Kubernetes: the trainer in a GPU pod, launched through Dagster Pipes
(`PipesK8sClient`, dagster-k8s), selected with `TrainerLauncherResource(mode="k8s")`.

The pod runs the code-location image (infra/Dockerfile, CUDA variant) with the same command as the
subprocess launcher: the trainer directly for one GPU, `torchrun --nproc-per-node N` for N GPUs.
It asks for N GPUs of the GPU node pool (node selector + the NVIDIA taint's toleration), gets
its settings from the deployment's Secret (`envFrom`, never inlined), a memory-backed /dev/shm
for NCCL, and the training spec as MEDIAFM_TRAIN_SPEC. Inputs and the checkpoint live on S3 (the
pod shares no disk with Dagster), so the storage root must be s3://. Pipes messages come back
through the pod's logs; only rank 0 writes them.
"""

from __future__ import annotations

import json

from dagster_k8s import PipesK8sClient

from mediafm_assets.pretraining.pipes_trainer import SPEC_ENV
from mediafm_assets.resources import TrainerLauncherResource
from mediafm_core.errors import InputError
from mediafm_core.storage.s3 import is_s3


def trainer_pod_spec(trainer: TrainerLauncherResource) -> dict:
    """The base pod spec (snake_case V1PodSpec keys) of a training pod with N GPUs."""
    gpus = str(trainer.processes())
    return {
        "restart_policy": "Never",
        "node_selector": dict(trainer.node_selector),
        "tolerations": [
            {"key": trainer.gpu_resource, "operator": "Exists", "effect": "NoSchedule"}
        ],
        "containers": [
            {
                "name": "trainer",
                "resources": {
                    "requests": {
                        "cpu": trainer.cpu,
                        "memory": trainer.memory,
                        trainer.gpu_resource: gpus,
                    },
                    "limits": {"memory": trainer.memory, trainer.gpu_resource: gpus},
                },
                "env_from": [{"secret_ref": {"name": trainer.env_secret}}],
                "volume_mounts": [{"name": "dshm", "mount_path": "/dev/shm"}],
            }
        ],
        "volumes": [{"name": "dshm", "empty_dir": {"medium": "Memory"}}],
    }


def k8s_run_kwargs(trainer: TrainerLauncherResource, spec: dict) -> dict:
    """Keyword arguments of `PipesK8sClient.run` (besides context) for this training spec."""
    from mediafm_assets.pretraining.assets import trainer_command

    if trainer.mode != "k8s" or not trainer.image:
        raise InputError("trainer resource", "mode 'k8s' needs `image` (the CUDA trainer image)")
    if not is_s3(spec["out_dir"]):
        raise InputError(spec["out_dir"], "a Kubernetes trainer pod needs an s3:// storage root")
    pod_python = TrainerLauncherResource(
        nproc_per_node=trainer.processes(), python=trainer.python or "python"
    )
    return {
        "image": trainer.image,
        "command": trainer_command(pod_python),
        "namespace": trainer.namespace or None,
        "env": {SPEC_ENV: json.dumps(spec)},
        "base_pod_spec": trainer_pod_spec(trainer),
        "base_pod_meta": {
            "labels": {"app.kubernetes.io/part-of": "mediafm", "mediafm/job": "pretrain"}
        },
    }


def run_with_k8s(context, trainer: TrainerLauncherResource, spec: dict) -> dict:
    """Train in a GPU pod; the metadata rank 0 reported through Pipes comes back. The client
    loads the in-cluster config inside Kubernetes, else ~/.kube/config (dagster-k8s default)."""
    kwargs = k8s_run_kwargs(trainer, spec)
    result = PipesK8sClient().run(context=context, **kwargs).get_materialize_result()
    return dict(result.metadata or {}) | {
        "command": " ".join(kwargs["command"]),
        "image": trainer.image,
    }
