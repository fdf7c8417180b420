"""What a served registry alias points at: versions downloaded into a private cache, and the last one that served well.

`Source.current()` resolves the alias and downloads that version once (digest-checked by the caller's `download`)
into a cache folder of this process (`graft-serve-<pid>-*` under the temporary folder). A version swapped out is
deleted at once; the cache is deleted on stop, and a cache whose process died (kill -9) is deleted by the next
server that starts. `keep()` copies a version that loaded and answered its probe to the last-good folder with its
digest; when the alias points at a version that cannot load, or the registry cannot be reached, the server starts
from that copy instead of dying (`last_good()` checks the digest before handing it out).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from graft.core.artifacts import atomic_dir, folder_digest, read_json, write_json
from graft.core.errors import GraftError
from graft.core.processes import alive

CACHE_PREFIX = "graft-serve-"
META = "graft_last_good.json"


def _reap_stale_caches(root: Path) -> None:
    """Delete the download caches of servers that died without cleaning up (their pid is gone)."""
    for path in root.glob(f"{CACHE_PREFIX}*-*"):
        pid = path.name.removeprefix(CACHE_PREFIX).split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


class Source:
    """A registry alias followed by `graft serve`: resolve + download, a private cache, the last-good copy."""

    def __init__(self, resolve: Callable[[], str], download: Callable[[str, Path], Path], last_good: Path,
                 describe: str):
        self.resolve, self._download, self.last_good_dir, self.describe = resolve, download, last_good, describe
        tmp = Path(tempfile.gettempdir())
        _reap_stale_caches(tmp)
        self.cache = Path(tempfile.mkdtemp(prefix=f"{CACHE_PREFIX}{os.getpid()}-", dir=tmp))
        self.refused: dict[str, str] = {}  # version -> why it could not be served (not downloaded again)

    def fetch(self, version: str) -> Path:
        """A version's package folder, downloaded into the cache the first time."""
        dest = self.cache / f"v{version}"
        if not dest.is_dir():
            with atomic_dir(dest) as tmp:
                self._download(version, tmp)
        found = next((p.parent for p in dest.rglob("graft_model.json")), None)
        if found is None:
            raise GraftError(f"{self.describe} v{version}: the downloaded package has no graft_model.json")
        return found

    def retire(self, version: str) -> None:
        """Delete a version's download once it is no longer served."""
        shutil.rmtree(self.cache / f"v{version}", ignore_errors=True)

    def keep(self, version: str, folder: Path) -> None:
        """Copy a version that served (loaded and answered its probe) to the last-good folder, with its digest."""
        if folder.resolve().is_relative_to(self.last_good_dir.resolve()):
            return
        with atomic_dir(self.last_good_dir) as tmp:
            shutil.copytree(folder, tmp / "package")
            write_json(tmp / META, {"version": version, "sha256": folder_digest(tmp / "package"),
                                    "source": self.describe})

    def last_good(self) -> tuple[str, Path] | None:
        """The last version that served well, when its copy is intact (digest checked); else None."""
        meta, package = self.last_good_dir / META, self.last_good_dir / "package"
        if not meta.is_file() or not package.is_dir():
            return None
        kept = read_json(meta)
        if kept.get("source") != self.describe or folder_digest(package) != kept.get("sha256"):
            return None
        return str(kept["version"]), package

    def close(self) -> None:
        """Delete the download cache (the last-good copy stays, for the next start)."""
        shutil.rmtree(self.cache, ignore_errors=True)
