"""Find the weights file of a model version (the order: :func:`resolve_weights`) and its exported runtimes.

Every file is checked against its pinned sha256 before anything loads it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from huggingface_hub import HfApi, ModelCard, get_session, hf_hub_download, try_to_load_from_cache
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from detector.errors import ModelResolutionError, WeightsIntegrityError
from detector.files import sha256_file
from detector.settings import ENV_GROUND_SCALE, ENV_HUB_REPO, ENV_WEIGHTS, HubSettings, ModelSettings
from detector.versions.manifest import ExportedRuntime, Manifest, ModelVersion, load_manifest
from detector.versions.weights_facts import read_weights_facts

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedWeights:
    """A weights file on disk whose sha256 has been checked, and what it is."""

    path: Path
    sha256: str
    source: str  # "local" | "cache" | "hub" | "shipped"
    version: ModelVersion
    # the manifest it was resolved against: its runtimes resolve from the same one (read once per load)
    manifest: Manifest | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ResolvedRuntime:
    """An exported runtime of a version on disk, every file of it sha256-checked: what ultralytics loads."""

    path: Path  # the OpenVINO folder or the .onnx file
    source: str  # "cache" | "hub" | "shipped"
    runtime: ExportedRuntime

    @property
    def name(self) -> str:
        return self.runtime.name


def verify_sha256(path: str | os.PathLike[str], expected: str) -> str:
    """Return the file's sha256, or raise :class:`WeightsIntegrityError` when it differs from ``expected``."""
    actual = sha256_file(path)
    if actual != expected.lower():
        raise WeightsIntegrityError(
            f"Refusing weights file {path}: sha256 is {actual}, expected {expected.lower()}. "
            "Delete the file (or the hub cache entry) and download it again, or fix the pinned sha256."
        )
    return actual


def _hub_kwargs(hub: HubSettings) -> dict[str, str | None]:
    return {"endpoint": hub.endpoint, "cache_dir": hub.cache_dir}


def _hub_offline(hub: HubSettings) -> bool:
    return hub.offline or hf_constants.HF_HUB_OFFLINE


def _endpoint(hub: HubSettings) -> str:
    return hub.endpoint or hf_constants.ENDPOINT


def hub_reachable(hub: HubSettings) -> bool:
    """One quick request to the hub endpoint, without huggingface_hub's retry back-off (~25 s when offline).

    Any HTTP answer counts as reachable; only a connection failure or timeout does not.
    """
    try:
        get_session().head(_endpoint(hub), timeout=hub.timeout_s)
    except Exception:  # noqa: BLE001 - any transport failure (DNS, refused, TLS, timeout) means "not reachable"
        return False
    return True


def version_from_card(repo_id: str, revision: str, hub: HubSettings, name: str | None = None) -> ModelVersion:
    """Describe an unlisted hub revision from the model card (README.md metadata) stored at that revision."""
    if not _hub_offline(hub) and not hub_reachable(hub):
        raise ModelResolutionError(
            f"Cannot read the model card of {repo_id}@{revision}: {_endpoint(hub)} is unreachable."
        )
    try:
        card_path = hf_hub_download(
            repo_id, "README.md", revision=revision, local_files_only=_hub_offline(hub), **_hub_kwargs(hub)
        )
    except RevisionNotFoundError as exc:
        raise ModelResolutionError(f"Revision {revision!r} does not exist in hub repo {repo_id!r}.") from exc
    except RepositoryNotFoundError as exc:
        raise _missing_repo_or_revision(repo_id, revision, hub) from exc
    except (EntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise ModelResolutionError(
            f"Cannot read the model card of {repo_id}@{revision} from {_endpoint(hub)} ({type(exc).__name__}); "
            "check HF_ENDPOINT and the revision, or add the version to weights/manifest.yaml."
        ) from exc
    return ModelVersion.from_card(ModelCard.load(card_path).data.to_dict(), repo_id, revision, name=name)


def _missing_repo_or_revision(repo_id: str, revision: str, hub: HubSettings) -> ModelResolutionError:
    """Some hubs answer an unknown revision with 'repository not found': ask for the refs to tell which."""
    try:
        refs = HfApi(endpoint=hub.endpoint).list_repo_refs(repo_id)
    except (HfHubHTTPError, OSError):
        return ModelResolutionError(f"Hub repo {repo_id!r} not found at {_endpoint(hub)} (check {ENV_HUB_REPO}).")
    known = ", ".join(sorted(t.name for t in refs.tags) + sorted(b.name for b in refs.branches)) or "none"
    return ModelResolutionError(f"Revision {revision!r} does not exist in hub repo {repo_id!r} (known: {known}).")


def _from_cache(version: ModelVersion, revision: str, hub: HubSettings) -> ResolvedWeights | None:
    cached = try_to_load_from_cache(version.repo_id, version.filename, revision=revision, cache_dir=hub.cache_dir)
    if not isinstance(cached, str):
        return None
    sha = verify_sha256(cached, version.sha256)
    return ResolvedWeights(Path(cached), sha, "cache", version)


def _from_hub(version: ModelVersion, revision: str, hub: HubSettings) -> ResolvedWeights:
    """Download from the hub; raises ModelResolutionError with the reason in one line."""
    where = f"model {version.name} ({version.repo_id}@{revision}, {version.filename}) from {_endpoint(hub)}"
    if not _hub_offline(hub) and not hub_reachable(hub):
        raise ModelResolutionError(f"Cannot fetch {where}: the hub is unreachable and nothing is cached.")
    try:
        path = hf_hub_download(
            version.repo_id, version.filename, revision=revision, local_files_only=_hub_offline(hub),
            **_hub_kwargs(hub),
        )  # fmt: skip
    except RevisionNotFoundError as exc:
        raise ModelResolutionError(f"Revision {revision!r} does not exist in hub repo {version.repo_id!r}.") from exc
    except RepositoryNotFoundError as exc:
        raise _missing_repo_or_revision(version.repo_id, revision, hub) from exc
    except LocalEntryNotFoundError as exc:
        raise ModelResolutionError(
            f"Cannot fetch {where}: the hub is unreachable or offline (HF_HUB_OFFLINE) and nothing is cached."
        ) from exc
    except EntryNotFoundError as exc:
        raise ModelResolutionError(f"File {version.filename!r} is not in {version.repo_id}@{revision}.") from exc
    except (HfHubHTTPError, OSError) as exc:
        raise ModelResolutionError(f"Cannot fetch {where}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    sha = verify_sha256(path, version.sha256)
    return ResolvedWeights(Path(path), sha, "hub", version)


def _from_shipped(version: ModelVersion, weights_dir: Path) -> ResolvedWeights | None:
    shipped = version.shipped_path(weights_dir)
    if shipped is None or not shipped.is_file():
        return None
    sha = verify_sha256(shipped, version.sha256)
    return ResolvedWeights(shipped, sha, "shipped", version)


def resolve_weights(model: ModelSettings | None = None, manifest: Manifest | None = None) -> ResolvedWeights:
    """Find and verify the weights of a model version, local copies first.

    Order: an explicit local file (``model.weights``) → the local HF cache → the file shipped in ``weights/``
    (manifest versions only) → the hub, ``hf_hub_download(repo_id, filename, revision=<pinned>)``. Every copy is
    checked against the pinned sha256, so a local one is the same model and the hub is not contacted for it.
    ``model.refresh`` asks the hub first and falls back to the shipped file with a warning. An explicit
    ``repo_id``/``revision`` never falls back to a shipped file (you asked for that revision, so you get it or a
    clear error). ``manifest`` defaults to ``model.manifest``, else the shipped ``weights/manifest.yaml``.
    """
    model = model or ModelSettings()
    manifest = manifest or load_manifest(model.manifest)  # read once per load: resolve_runtime reuses it
    return replace(_find_weights(model, manifest), manifest=manifest)


def _find_weights(model: ModelSettings, manifest: Manifest) -> ResolvedWeights:
    hub = model.hub
    sha256 = (model.sha256 or "").lower() or None
    if model.weights is not None:
        return _resolve_local(Path(model.weights), sha256, manifest, model.version, model.ground_scale)

    if model.repo_id is None and model.revision is None:
        target, explicit = manifest.get(model.version), False
    else:
        # An explicit repo/revision needs the manifest only for what it leaves out (an unlisted default is fine).
        wanted = model.version or manifest.default in manifest.versions
        pinned = manifest.get(model.version) if wanted else None
        target_repo = model.repo_id or (pinned.repo_id if pinned else None)
        target_rev = model.revision or (pinned.pinned_revision if pinned else "main")
        if target_repo is None:
            raise ModelResolutionError(f"The manifest lists no model version; give the hub repo too ({ENV_HUB_REPO}).")
        if pinned and target_repo == pinned.repo_id and target_rev in {pinned.revision, pinned.commit}:
            target, explicit = pinned, False
        else:
            explicit = True
            target = _listed_version(manifest, target_repo, target_rev)
            if target is None:
                target = version_from_card(target_repo, target_rev, hub)
                if sha256:
                    target = replace(target, sha256=sha256)
    rev = target.pinned_revision if not explicit else (model.revision or target.pinned_revision)

    def local_copy() -> ResolvedWeights | None:
        return _from_cache(target, rev, hub) or (None if explicit else _from_shipped(target, manifest.weights_dir))

    if not model.refresh:
        local = local_copy()
        if local is not None:
            return local
    try:
        return _from_hub(target, rev, hub)
    except ModelResolutionError as exc:
        local = local_copy()
        if local is None:
            raise
        logger.warning("%s Using the verified local copy %s.", exc, local.path)
        return local


def _listed_version(manifest: Manifest, repo_id: str, revision: str) -> ModelVersion | None:
    for listed in manifest.versions.values():
        if listed.repo_id == repo_id and revision in {listed.revision, listed.commit}:
            return listed
    return None


def _resolve_local(
    path: Path, sha256: str | None, manifest: Manifest, version: str | None, ground_scale: float | None
) -> ResolvedWeights:
    """An explicit file: a manifest version when its sha256 is listed, else an unlisted ``local`` version counted at
    the ground scale, chip size and classes the file records (:mod:`detector.versions.weights_facts`); the
    setting's ground scale overrides the recorded one, and a file that records none is refused without it."""
    if not path.is_file():
        raise ModelResolutionError(
            f"Weights file {path} does not exist (from {{setting}}{path} or {ENV_WEIGHTS}).", setting="weights"
        )
    actual = verify_sha256(path, sha256) if sha256 else sha256_file(path)
    listed = next((v for v in manifest.versions.values() if v.sha256 == actual), None)
    if listed is None and version and version in manifest.versions:
        listed = manifest.versions[version]
        verify_sha256(path, listed.sha256)
    return ResolvedWeights(path, actual, "local", listed or _unlisted_version(path, actual, ground_scale))


def _unlisted_version(path: Path, sha256: str, ground_scale: float | None) -> ModelVersion:
    """An unlisted weights file as a ``local`` version, from the facts it records (a published version's file: its
    calibrated thresholds too) and the ground-scale setting."""
    facts = read_weights_facts(path)
    if facts is None and ground_scale is None:
        raise ModelResolutionError(
            f"Weights file {path} does not record the ground scale it was trained at (no facts in the checkpoint, "
            f"no training record beside it), and counting at the wrong scale miscounts every class: give it "
            f"({{setting}}0.5 for a model trained on photos at half resolution; {ENV_GROUND_SCALE}), or "
            "record it with python -m training.train --stamp RUN --dataset DATASET.",
            setting="ground_scale",
        )
    if facts is None:
        return ModelVersion.unlisted(path.name, sha256, ground_scale=ground_scale)
    if ground_scale is not None and ground_scale != facts.ground_scale:
        logger.warning(
            "Counting %s at ground scale %s (the setting), not the %s it was trained at.",
            path, ground_scale, facts.ground_scale,
        )  # fmt: skip
    chosen = facts.ground_scale if ground_scale is None else ground_scale
    version = ModelVersion.unlisted(path.name, sha256, ground_scale=chosen)
    return replace(
        version, class_names=facts.class_names, imgsz=facts.chip_size, class_conf=dict(facts.class_conf),
        greyscale_input=facts.greyscale_input,
    )  # fmt: skip


def resolve_runtime(
    name: str, weights: ResolvedWeights, model: ModelSettings | None = None, manifest: Manifest | None = None
) -> ResolvedRuntime:
    """Find and verify the files of a version's exported runtime ``name``, in the order of :func:`resolve_weights`.

    The files live in the version's pinned hub revision (``training.export`` publishes them there): the local HF
    cache → the copy shipped in ``weights/`` (a manifest version whose runtime says ``shipped``) → the hub. All
    files of one runtime come from the same place, so an OpenVINO folder stays together; each is checked against
    its pinned sha256 (:class:`WeightsIntegrityError` when one differs). ``model.refresh`` asks the hub first.
    """
    model = model or ModelSettings()
    version = weights.version
    runtime = version.runtimes.get(name)
    if runtime is None:
        have = ", ".join(version.runtimes) or "none"
        raise ModelResolutionError(f"Model version {version.name} has no {name} export (exports: {have}).")
    manifest = manifest or weights.manifest or load_manifest(model.manifest)
    listed = manifest.versions.get(version.name)
    shipped_dir = manifest.weights_dir if runtime.shipped and listed and listed.sha256 == version.sha256 else None
    rev, hub = version.pinned_revision, model.hub
    pins = [replace(version, filename=path, sha256=sha, shipped_file=path) for path, sha in runtime.files.items()]

    def every(find) -> list[ResolvedWeights] | None:
        found = []
        for pin in pins:
            one = find(pin)
            if one is None:
                return None
            found.append(one)
        return found

    def local() -> list[ResolvedWeights] | None:
        cached = every(lambda pin: _from_cache(pin, rev, hub)) if version.repo_id else None
        if cached is None and shipped_dir is not None:
            cached = every(lambda pin: _from_shipped(pin, shipped_dir))
        return cached

    found = None if model.refresh else local()
    if found is None:
        if not version.repo_id:
            raise ModelResolutionError(f"Model version {version.name} has no hub repo to fetch its {name} export from.")
        try:
            found = [_from_hub(pin, rev, hub) for pin in pins]
        except ModelResolutionError as exc:
            found = local()
            if found is None:
                raise
            logger.warning("%s Using the verified local copy.", exc)
    roots = {_repo_root(item.path, item.version.filename) for item in found}
    if len(roots) != 1:
        raise ModelResolutionError(f"The files of the {name} export of {version.name} are not in one folder: {roots}.")
    return ResolvedRuntime(roots.pop() / runtime.path, found[0].source, runtime)


def _repo_root(path: Path, repo_path: str) -> Path:
    """The folder that holds ``repo_path`` at ``path`` (a snapshot of the repo, or ``weights/``)."""
    return path.parents[len(Path(repo_path).parts) - 1]
