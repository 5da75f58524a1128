"""Object storage for recordings: streaming uploads, salvage, presigned URLs, transfers and
retention, over R2 (the default), AWS S3, DigitalOcean Spaces, GCS and Azure Blob.

Shared by the bot (uploads) and the operator (URLs, transfers, retention), so it imports no
media libraries.
"""

from tapedeck_bot.storage.factory import open_store
from tapedeck_bot.storage.outputs import output_metadata
from tapedeck_bot.storage.presign import MAX_EXPIRY, PresignedUrl, presign
from tapedeck_bot.storage.retention import (
    delete_recording,
    expire_by_rule,
    lifecycle_rule,
    remove_expiry_rule,
)
from tapedeck_bot.storage.salvage import (
    Salvaged,
    SalvagePlan,
    list_segments,
    plan_salvage,
    run_salvage,
    salvage,
)
from tapedeck_bot.storage.settings import (
    Credentials,
    MissingCredentials,
    credentials_from_env,
    credentials_from_secret,
    object_key,
    part_size_for,
    recording_prefix,
)
from tapedeck_bot.storage.store import ObjectStore, StorageError
from tapedeck_bot.storage.transfer import Destination, TransferResult, transfer
from tapedeck_bot.storage.uploader import StreamingUpload, Uploads, UploadsIncomplete

__all__ = [
    "MAX_EXPIRY",
    "Credentials",
    "Destination",
    "MissingCredentials",
    "ObjectStore",
    "PresignedUrl",
    "SalvagePlan",
    "Salvaged",
    "StorageError",
    "StreamingUpload",
    "TransferResult",
    "Uploads",
    "UploadsIncomplete",
    "credentials_from_env",
    "credentials_from_secret",
    "delete_recording",
    "expire_by_rule",
    "lifecycle_rule",
    "list_segments",
    "object_key",
    "open_store",
    "output_metadata",
    "part_size_for",
    "plan_salvage",
    "presign",
    "recording_prefix",
    "remove_expiry_rule",
    "run_salvage",
    "salvage",
    "transfer",
]
