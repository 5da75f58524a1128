"""The bot pod streams its outputs to S3 (SeaweedFS); a killed pod's work is salvaged."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from tapedeck_bot.contract import Output
from tapedeck_dev.janus import JanusServer
from tapedeck_dev.storage_servers import SeaweedFS
from tests.janus.conftest import ENV, Meeting
from tests.media_probe import RATE, audio_samples, tone_levels
from tests.storage.media import playable_seconds
from tests.storage_fixtures import seaweed_store


def _attempt(config: dict[str, Any], seaweed: SeaweedFS, seconds: float, sig: int) -> str:
    env = {
        **ENV,
        "TAPEDECK_BOT_CONFIG": json.dumps(config),
        "TAPEDECK_STORAGE_ACCESS_KEY_ID": seaweed.access_key,
        "TAPEDECK_STORAGE_SECRET_ACCESS_KEY": seaweed.secret_key,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tapedeck_bot.cli", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(seconds)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == (0 if sig == signal.SIGTERM else -signal.SIGKILL), err
    return out


def test_killed_pod_is_salvaged_and_every_segment_listed(
    janus: JanusServer, meeting: Meeting, seaweed: SeaweedFS, tmp_path: Path
) -> None:
    alice, bob = meeting.join(0), meeting.join(1)
    store = seaweed_store(seaweed)
    bucket = store.bucket
    recording_id = str(uuid.uuid4())
    config = {
        "namespace": "team-a",
        "recording": "standup",
        "recordingId": recording_id,
        "spoolDir": str(tmp_path / "spool"),  # the pod's emptyDir: it outlives the container
        "storage": {
            "type": "r2",
            "endpoint": seaweed.endpoint,
            "bucket": bucket,
            "path": "team-a",
            "secretRef": {"name": "r2"},
        },
        "spec": {
            "meeting": {"id": "standup", "janus": {"url": janus.ws_url, "room": meeting.room}},
            "composite": {"video": {"codec": "VP8", "width": 640, "height": 360}},
            "tracks": {"enabled": True},
            "maxSeconds": 60,
        },
    }
    _attempt(config, seaweed, 8, signal.SIGKILL)  # the container dies mid-recording
    out = _attempt(config, seaweed, 6, signal.SIGTERM)  # and is restarted in the same pod

    outputs = [
        Output.model_validate(json.loads(line.removeprefix("output: ")))
        for line in out.splitlines()
        if line.startswith("output: ")
    ]
    prefix = f"team-a/{recording_id}/"
    assert all(o.key.startswith(prefix) for o in outputs)
    composites = [o for o in outputs if o.kind == "composite"]
    tracks = [o for o in outputs if o.kind == "track"]
    assert [c.salvaged for c in composites] == [True, False]  # in the order they started
    assert composites[0].started_at < composites[1].started_at
    assert sorted((t.user_id, t.salvaged) for t in tracks) == [
        (alice.name, False), (alice.name, True), (bob.name, False), (bob.name, True)
    ]  # fmt: skip
    assert {t.content_type for t in tracks} == {"audio/webm"}
    assert store.list_uploads(prefix) == []
    assert not any((tmp_path / "spool" / "uploads").iterdir())

    for n, composite in enumerate(composites):
        path = tmp_path / f"segment{n}.webm"
        path.write_bytes(b"".join(store.read(composite.key, 1 << 20)))
        assert path.stat().st_size == composite.bytes
        video, audio = playable_seconds(path)
        assert video > 2.5
        assert audio > 2.5
    salvaged_track = next(t for t in tracks if t.user_id == alice.name and t.salvaged)
    path = tmp_path / "alice.webm"
    path.write_bytes(b"".join(store.read(salvaged_track.key, 1 << 20)))
    samples = audio_samples(path)
    levels = tone_levels(samples[RATE:], [alice.freq, bob.freq])
    assert levels[alice.freq] > -6
    assert levels[bob.freq] < -30
    store.close()
