"""Command-line options that ``sealion-count`` and ``sealion-app`` share: which model to load, and the one place
where those options meet the environment's settings (:meth:`detector.settings.Settings.from_env`)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from pathlib import Path

from detector.errors import DetectorError
from detector.settings import (
    ENV_DEVICE,
    ENV_GROUND_SCALE,
    ENV_HUB_REPO,
    ENV_HUB_REVISION,
    ENV_MODEL_VERSION,
    ENV_REFRESH,
    ENV_RUNTIME,
    ENV_WEIGHTS,
    Settings,
)
from detector.versions.runtimes import RUNTIME_CHOICES


def option_message(error: DetectorError) -> str:
    """An error as the command line's user reads it: a setting it names is spelled as its option (``--device cpu``)."""
    return error.worded(lambda name: f"--{name.replace('_', '-')} ")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Which model to load; each option overrides its environment variable (:class:`detector.settings.Settings`)."""
    parser.add_argument("--device", default=None, help=f"auto (default), cpu, cuda, cuda:N or mps [{ENV_DEVICE}]")
    parser.add_argument(
        "--runtime", choices=RUNTIME_CHOICES, default=None,
        help="what runs the network: auto (default: the version's exported CPU runtime on a CPU when its package is "
        f"installed, else torch), torch, or an export the version has [{ENV_RUNTIME}]",
    )  # fmt: skip
    parser.add_argument(
        "--model-version", default=None, help=f"model version from weights/manifest.yaml [{ENV_MODEL_VERSION}]"
    )
    parser.add_argument("--weights", type=Path, default=None, help=f"explicit local weights file [{ENV_WEIGHTS}]")
    parser.add_argument(
        "--ground-scale", type=float, default=None,
        help="the ground scale an unlisted --weights file was trained at (default: what the file records; "
        f"required for a file that records none) [{ENV_GROUND_SCALE}]",
    )  # fmt: skip
    parser.add_argument("--hub-repo", default=None, help=f"hub repo id to pull from [{ENV_HUB_REPO}]")
    parser.add_argument("--revision", default=None, help=f"hub tag, branch or commit sha [{ENV_HUB_REVISION}]")
    parser.add_argument(
        "--refresh", action="store_true", default=None,
        help=f"ask the hub for the version even when a verified local copy exists [{ENV_REFRESH}=1]",
    )  # fmt: skip


def settings_from(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """The environment's settings with the command line's model options over them (the one place both meet)."""
    settings = Settings.from_env(environ)
    model = settings.model.with_options(
        version=args.model_version, weights=args.weights, ground_scale=args.ground_scale, repo_id=args.hub_repo,
        revision=args.revision, refresh=args.refresh, device=args.device, runtime=args.runtime,
    )  # fmt: skip
    return dataclasses.replace(settings, model=model)
