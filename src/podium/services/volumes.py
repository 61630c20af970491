"""Named volumes: filesystems replicas mount by name. On the local runtime a volume is a directory
under <data_dir>/volumes/<name>; deleting one removes its data, so a volume in use can't be deleted."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from podium.core.errors import Conflict, Invalid, NotFound
from podium.core.ids import APP_NAME_RE, new_id
from podium.core.specs import parse_size
from podium.store.repos import Store
from podium.store.tables import VolumeRow


def volume_path(data_dir: Path, name: str) -> Path:
    """Where the local runtime keeps a named volume (what a replica's mount points at)."""
    return data_dir / "volumes" / name


class VolumeService:
    def __init__(self, store: Store, data_dir: Path) -> None:
        self.store = store
        self.data_dir = data_dir

    async def create(
        self, name: str, description: str = "", size: str | None = None, region: str = "local"
    ) -> VolumeRow:
        if not APP_NAME_RE.match(name) or name.startswith("vol-"):
            raise Invalid("name", "use lowercase letters, digits and hyphens (1-63), not starting with 'vol-'")
        if size is not None:
            try:
                parse_size(size)
            except ValueError as exc:
                raise Invalid("size", str(exc)) from exc
        path = volume_path(self.data_dir, name)
        row = VolumeRow(
            id=new_id("vol"),
            name=name,
            description=description,
            region=region,
            size=size,
            path=str(path),
            created_at=time.time(),
        )
        await self.store.add_volume(row)  # 409 on a taken name, before touching the disk
        path.mkdir(parents=True, exist_ok=True)
        return row

    async def get(self, key: str) -> VolumeRow:
        row = await self.store.find_volume(key)
        if row is None:
            raise NotFound(f"volume {key!r} not found")
        return row

    async def list_all(self) -> list[VolumeRow]:
        return await self.store.volumes()

    async def delete(self, key: str, in_use_by: list[str]) -> VolumeRow:
        row = await self.get(key)
        if in_use_by:
            raise Conflict(
                f"volume {row.name!r} is mounted by endpoint(s) {', '.join(in_use_by)}; remove it from them first",
                {"endpoints": in_use_by},
            )
        await self.store.delete_volume(row.id)
        shutil.rmtree(row.path, ignore_errors=True)
        return row

    async def host_source(self, source: str) -> str:
        """A mount's source as the runtime needs it: named volumes become their directory."""
        if source.startswith("/") or source.startswith("s3://"):
            return source
        return (await self.get(source)).path
