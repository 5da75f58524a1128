"""A stand-in for the bot's writer in its own process, so a test can SIGKILL it mid-upload.

python -m tests.storage.feeder ENDPOINT BUCKET KEY FILE SPOOL MIB_PER_S
(credentials in TAPEDECK_STORAGE_ACCESS_KEY_ID / _SECRET_ACCESS_KEY)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from tapedeck_bot.contract import StorageType
from tapedeck_bot.storage import Uploads, credentials_from_env, open_store
from tests.storage_fixtures import s3_spec

MIB = 1024 * 1024


def main() -> None:
    endpoint, bucket, key, source, spool, rate = sys.argv[1:7]
    store = open_store(s3_spec(endpoint, bucket), credentials_from_env(os.environ, StorageType.S3))
    uploads = Uploads(store, Path(spool), part_size=5 * MIB, spool_limit=1024 * MIB)
    upload = uploads.open(key, "video/mp4")
    data = Path(source).read_bytes()
    chunk = 64 * 1024
    for at in range(0, len(data), chunk):
        upload.write(data[at : at + chunk])
        time.sleep(chunk / (float(rate) * MIB))
    upload.close()
    uploads.finish()
    uploads.close()


if __name__ == "__main__":
    main()
