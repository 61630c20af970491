"""A region's model cache (HF_HOME): fill it ahead of time, and tell whether a model is in it.

The layout is the Hugging Face hub cache's, so vLLM (and anything built on huggingface_hub) finds
the weights without a download: `HF_HOME/hub/models--ORG--NAME/refs/main` holds the commit, and
`snapshots/COMMIT/` the files. `pull` speaks the hub's HTTP API (`/api/models/REPO/revision/REV`
for the file list, `/REPO/resolve/COMMIT/FILE` for each file) to any hub URL (huggingface.co, a
mirror, a local one in tests), streams each file to `FILE.incomplete` and renames it when complete,
so an interrupted pull leaves no half file that looks whole and a second pull skips what it has.
The token (HF_TOKEN, for gated models) is sent as a bearer header and never printed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

DEFAULT_HUB = "https://huggingface.co"
CHUNK = 1 << 20
Progress = Callable[[str, int, int], None]  # (file, bytes of the whole pull done so far, total bytes)


class PullError(RuntimeError):
    """The hub refused or the files could not be written; the message says which and why."""


@dataclass(frozen=True)
class PullResult:
    repo: str
    commit: str
    snapshot: Path
    files: int
    downloaded_bytes: int  # 0: everything was already in the cache
    total_bytes: int


def repo_dir(hf_home: str | Path, repo: str) -> Path:
    return Path(hf_home) / "hub" / ("models--" + repo.replace("/", "--"))


def cached_snapshot(hf_home: str | Path, repo: str, revision: str = "main") -> Path | None:
    """The snapshot folder of `repo` at `revision` if the cache holds a complete one, else None."""
    base = repo_dir(hf_home, repo)
    ref = base / "refs" / revision
    commit = ref.read_text().strip() if ref.is_file() else revision
    snap = base / "snapshots" / commit
    if not snap.is_dir() or not any(snap.iterdir()):
        return None
    if any(p.name.endswith(".incomplete") for p in snap.rglob("*")):
        return None
    return snap


def cache_report(hf_home: str, weights: str) -> str:
    """One line for a replica's events: whether its start will download the weights."""
    if weights.startswith("/") or "/" not in weights:
        return f"weights {weights} are a local path: no model cache involved"
    snap = cached_snapshot(hf_home, weights)
    if snap is not None:
        return f"model cache hit: {weights} is in {hf_home} (no download)"
    return (
        f"model cache miss: {weights} is not in {hf_home}; this replica downloads it (podium model pull fills it ahead)"
    )


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _listing(client: httpx.Client, hub: str, repo: str, revision: str, token: str | None) -> dict[str, Any]:
    url = f"{hub}/api/models/{repo}/revision/{quote(revision, safe='')}"
    resp = client.get(url, params={"blobs": "true"}, headers=_headers(token))
    if resp.status_code in (401, 403):
        raise PullError(f"{repo} is gated or private: the hub answered {resp.status_code}; set HF_TOKEN")
    if resp.status_code == 404:
        raise PullError(f"{repo}@{revision} is not on {hub}")
    if resp.status_code != 200:
        raise PullError(f"listing {repo} on {hub} failed: HTTP {resp.status_code}")
    data: dict[str, Any] = resp.json()
    if not isinstance(data.get("sha"), str) or not isinstance(data.get("siblings"), list):
        raise PullError(f"{hub} answered an unexpected listing for {repo}")
    return data


def _safe_target(snapshot: Path, name: str) -> Path:
    target = (snapshot / name).resolve()
    if snapshot.resolve() not in target.parents:
        raise PullError(f"the hub listed a file outside the snapshot: {name!r}")
    return target


def pull(
    repo: str,
    hf_home: str | Path,
    *,
    hub: str = DEFAULT_HUB,
    revision: str = "main",
    token: str | None = None,
    progress: Progress | None = None,
    client: httpx.Client | None = None,
) -> PullResult:
    """Download every file of `repo` at `revision` into the cache; files already there are kept."""
    hub = hub.rstrip("/")
    own = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=True)
    try:
        listing = _listing(http, hub, repo, revision, token)
        commit = str(listing["sha"])
        base = repo_dir(hf_home, repo)
        snapshot = base / "snapshots" / commit
        files = [(str(s["rfilename"]), int(s.get("size") or 0)) for s in listing["siblings"]]
        total = sum(size for _, size in files)
        done = downloaded = 0
        for name, size in files:
            target = _safe_target(snapshot, name)
            if target.is_file() and (size == 0 or target.stat().st_size == size):
                done += target.stat().st_size
                if progress:
                    progress(name, done, total)
                continue
            got = _download(http, f"{hub}/{repo}/resolve/{commit}/{quote(name)}", target, token, done, total, progress)
            done += got
            downloaded += got
        (base / "refs").mkdir(parents=True, exist_ok=True)
        (base / "refs" / revision).write_text(commit)
        return PullResult(repo, commit, snapshot, len(files), downloaded, max(total, done))
    except httpx.HTTPError as exc:
        raise PullError(f"cannot reach {hub}: {exc}") from exc
    except OSError as exc:
        raise PullError(f"cannot write the cache at {hf_home}: {exc}") from exc
    finally:
        if own:
            http.close()


def _download(
    http: httpx.Client, url: str, target: Path, token: str | None, done: int, total: int, progress: Progress | None
) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".incomplete")
    got = 0
    with http.stream("GET", url, headers=_headers(token)) as resp:
        if resp.status_code != 200:
            raise PullError(f"downloading {url.rsplit('/resolve/', 1)[-1]} failed: HTTP {resp.status_code}")
        with open(partial, "wb") as f:
            for chunk in resp.iter_bytes(CHUNK):
                f.write(chunk)
                got += len(chunk)
                if progress:
                    progress(target.name, done + got, total)
    os.replace(partial, target)
    return got
