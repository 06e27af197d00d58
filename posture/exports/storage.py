"""The storage backends of built exports (ARC_EXPORT_STORAGE, see posture/env.py)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient
from django.core.files.storage import FileSystemStorage
from storages.backends.azure_storage import AzureStorage

PARTIAL_PREFIX = ".partial-"


class ExportFileStorage(FileSystemStorage):
    """Local files that appear whole or not at all. Django's FileSystemStorage writes straight to
    the final name, so a worker killed mid-save would leave a half-written export there; this one
    writes a hidden partial file beside it and renames it into place (atomic on one file system)."""

    def _save(self, name: str, content: Any) -> str:
        target = Path(self.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(prefix=PARTIAL_PREFIX, dir=target.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                for chunk in content.chunks():
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if self.file_permissions_mode is not None:
                os.chmod(partial, self.file_permissions_mode)
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        return name

    def remove_partials(self, older_than_seconds: float) -> int:
        """Delete partial files left by workers killed mid-save; returns how many."""
        root = Path(self.location)
        cutoff = time.time() - older_than_seconds
        stale = [path for path in root.rglob(PARTIAL_PREFIX + "*") if path.stat().st_mtime < cutoff] if root.exists() else []
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)


class ExportBlobStorage(AzureStorage):
    """django-storages' AzureStorage, whose client options (retries, connect timeout) apply with a
    connection string too: it drops them there, and an unreachable account would then be retried
    for minutes before the export could say so."""

    def _get_service_client(self) -> Any:
        if self.connection_string is not None:
            return BlobServiceClient.from_connection_string(self.connection_string, **self.client_options)
        return super()._get_service_client()
