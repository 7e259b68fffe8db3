"""Pushing exported folders to the Hugging Face Hub: one repository per folder,
``<prefix>-<folder name>`` (a dataset or a model repository), created if missing and
filled with one commit of the whole folder through ``huggingface_hub``.

``endpoint`` (else ``HF_ENDPOINT``, else the Hub) and ``token`` (else ``HF_TOKEN`` or the
saved login) are huggingface_hub's own settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bolt.export.datasets import Exported


class PushError(RuntimeError):
    """A push that cannot start (offline mode, a malformed repo id)."""


@dataclass(frozen=True)
class Pushed:
    exported: Exported
    repo_id: str
    url: str
    commit: str


def repo_id_for(prefix: str, exported: Exported) -> str:
    return f"{prefix}-{exported.name}"


def check_prefix(prefix: str) -> None:
    owner, _, name = prefix.partition("/")
    if not owner or not name or "/" in name:
        raise PushError(f"--push-to {prefix!r}: expected ORG/NAME-PREFIX, e.g. my-org/bolt-tiny")


def push_all(
    exported: Sequence[Exported],
    prefix: str,
    private: bool = False,
    endpoint: str | None = None,
    token: str | None = None,
) -> list[Pushed]:
    """Datasets first, so a model card's ``datasets`` names repositories that exist."""
    from huggingface_hub import HfApi, constants

    check_prefix(prefix)
    if constants.is_offline_mode():
        raise PushError("HF_HUB_OFFLINE is set: unset it to push (the folders are written)")
    api = HfApi(endpoint=endpoint, token=token)
    done = []
    for item in sorted(exported, key=lambda e: e.kind != "dataset"):
        repo_id = repo_id_for(prefix, item)
        repo = api.create_repo(repo_id, repo_type=item.kind, private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type=item.kind,
            folder_path=item.folder,
            commit_message=f"bolt export of {item.source}",
        )
        done.append(Pushed(item, repo_id, str(repo), commit.oid))
    return done
