"""The Blob Storage backend of built exports (ARC_EXPORT_STORAGE=azure, see posture/env.py)."""

from __future__ import annotations

from typing import Any

from azure.storage.blob import BlobServiceClient
from storages.backends.azure_storage import AzureStorage


class ExportBlobStorage(AzureStorage):
    """django-storages' AzureStorage, whose client options (retries, connect timeout) apply with a
    connection string too: it drops them there, and an unreachable account would then be retried
    for minutes before the export could say so."""

    def _get_service_client(self) -> Any:
        if self.connection_string is not None:
            return BlobServiceClient.from_connection_string(self.connection_string, **self.client_options)
        return super()._get_service_client()
