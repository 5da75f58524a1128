"""`make demo` (`tapedeck-dev demo`): the whole system on one machine, on embedded defaults.

It starts the local control plane, the process kubelet, Janus and SeaweedFS; installs the
Helm chart (CRD, RBAC, settings, the operator's Deployment, which the process kubelet runs);
starts a synthetic meeting of four participants (the fourth joins late, the third leaves
early) and applies examples/recording.yaml; shows `kubectl tapedeck status --watch` while
it pauses, resumes and stops the recording; downloads the outputs, writes a contact sheet of the
composite, and prints the signed webhooks it received, verified. Every server binds to
127.0.0.1. Ctrl-C, at any point, tears it all down; the next run starts afresh.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tapedeck_bot.contract import STORAGE_SECRET_ENV, StorageSpec
from tapedeck_bot.storage import credentials_from_env, open_store
from tapedeck_dev.binaries import KUBERNETES_VERSION, ensure_helm
from tapedeck_dev.cluster import LocalCluster, free_port
from tapedeck_dev.contact_sheet import contact_sheet
from tapedeck_dev.janus import JanusServer
from tapedeck_dev.local_server import stop_group
from tapedeck_dev.stack import (
    OPERATOR_NAMESPACE,
    create_restricted_namespace,
    kubectl_output,
    kubelet_command,
    wait_established,
)
from tapedeck_dev.storage_servers import SeaweedFS, SeaweedPorts
from tapedeck_dev.webhook_receiver import Receiver, new_secret, verified

__all__ = ["DemoOptions", "run_demo"]

NAMESPACE = "default"  # where examples/recording.yaml goes
RECORDING = "standup"  # its name
ROOM = 1234  # and its room
# Seconds from the meeting's start, which is just before the Recording is applied.
PARTICIPANTS = ("--participants", "4", "--join-at=0,0,0,12", "--leave-at=-1,-1,18,-1")
ACCESS_KEY, SECRET_KEY = "tapedeck-demo", "tapedeck-demo-secret"
BIN = Path(sys.executable).parent  # the venv's scripts: tapedeck-*, kubectl-tapedeck


@dataclass(frozen=True)
class DemoOptions:
    repo: Path
    seconds: float  # of recording, from RECORDING to the stop
    state: Path  # logs and servers' data, wiped at each start
    out: Path  # the downloaded outputs and the contact sheet
    hold: bool  # wait for Ctrl-C at the end, so that the user can look around


def _say(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def _spawn(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A child in a session of its own: the terminal's Ctrl-C reaches us, and we stop it."""
    with log.open("ab") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )  # fmt: skip


class _Kubectl:
    def __init__(self, kubectl: Path, kubeconfig: Path) -> None:
        self.argv = [str(kubectl), f"--kubeconfig={kubeconfig}"]

    def __call__(self, *args: str) -> str:
        return kubectl_output(self.argv, *args)

    def status(self) -> dict[str, Any]:
        recording = json.loads(self("-n", NAMESPACE, "get", "recording", RECORDING, "-o", "json"))
        status: dict[str, Any] = recording.get("status") or {}
        return status


def _wait(what: str, ready: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := ready():
            return found
        time.sleep(0.5)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def _joined(meeting: subprocess.Popen[bytes], log: Path) -> bool:
    text = log.read_text(errors="replace")
    if meeting.poll() is not None:
        raise RuntimeError(f"the meeting ended: {text[-500:]}")
    return " join " in text


def _chart_values(seaweed: SeaweedFS, receiver: Receiver) -> dict[str, Any]:
    """The chart's values for one machine: local storage and webhook receiver, loopback
    ports, and the bots' ICE kept on 127.0.0.1. Everything else is the chart's default."""
    return {
        "storage": {
            "type": "s3", "region": "us-east-1", "endpoint": seaweed.endpoint,
            "bucket": "recordings", "secretRef": {"name": "demo-storage"},
        },
        "webhooks": {
            "endpoints": [{
                "url": receiver.url("/tapedeck"),
                "secretRef": {"namespace": OPERATOR_NAMESPACE, "name": "demo-webhook",
                              "key": "secret"},
            }],
            "allowLoopbackDestinations": True,
            "initialBackoffSeconds": 1,
        },
        "bot": {"env": {"TAPEDECK_ICE_HOST_ADDRESSES": "127.0.0.1"}, "gracePeriodSeconds": 60},
        "metrics": {"port": free_port()},
        "health": {"port": free_port()},
        "listenAddress": "127.0.0.1",
    }  # fmt: skip


def _install_chart(
    opts: DemoOptions, kubectl: _Kubectl, values: dict[str, Any], webhook_secret: str
) -> None:
    values_file = opts.state / "values.yaml"
    values_file.write_text(yaml.safe_dump(values, sort_keys=False))
    rendered = subprocess.run(
        [str(ensure_helm()), "template", "tapedeck", str(opts.repo / "charts" / "tapedeck"),
         "--namespace", OPERATOR_NAMESPACE, "--kube-version", KUBERNETES_VERSION,
         "--values", str(values_file)],
        capture_output=True, text=True, check=True, timeout=120,
        env=dict(os.environ, HOME=str(opts.state)),  # helm's own config and cache stay here
    ).stdout  # fmt: skip
    (opts.state / "chart.yaml").write_text(rendered)
    create_restricted_namespace(kubectl.argv, OPERATOR_NAMESPACE)
    kubectl("label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted")
    kubectl(
        "-n", OPERATOR_NAMESPACE, "create", "secret", "generic", "demo-webhook",
        f"--from-literal=secret={webhook_secret}",
    )  # fmt: skip
    kubectl(
        "-n", NAMESPACE, "create", "secret", "generic", "demo-storage",
        f"--from-literal=accessKeyId={ACCESS_KEY}",
        f"--from-literal=secretAccessKey={SECRET_KEY}",
    )  # fmt: skip
    kubectl("apply", "-f", str(opts.state / "chart.yaml"))
    wait_established(kubectl.argv, "crd/recordings.tapedeck.dev")
    kubectl("-n", OPERATOR_NAMESPACE, "rollout", "status", "deploy/tapedeck", "--timeout=120s")


def _drive(kubectl: _Kubectl, seconds: float, problems: list[str]) -> None:
    """Pause once and resume, then stop `seconds` after the recording began, as a user would
    with kubectl (the status view above shows each change)."""

    def state(value: str) -> None:
        patch = json.dumps({"spec": {"state": value}})
        kubectl("-n", NAMESPACE, "patch", "recording", RECORDING, "--type=merge", "-p", patch)

    try:
        _wait("RECORDING", lambda: kubectl.status().get("phase") == "RECORDING", 120)
        began = time.monotonic()
        time.sleep(seconds * 0.4)
        state("Paused")
        time.sleep(min(5.0, seconds * 0.2))
        state("Recording")
        time.sleep(max(0.0, began + seconds - time.monotonic()))
        state("Stopped")
    except Exception as error:  # reported by the main thread, which then stops the demo
        problems.append(f"{type(error).__name__}: {error}")


def _webhooks(receiver: Receiver, secret: str) -> list[str]:
    """One line per received event, each verified with the endpoint's secret (`verified`
    raises when a signature does not match)."""

    def events() -> list[tuple[str, dict[str, Any]]]:
        return [(r.id or "", verified(r, secret)) for r in receiver.requests("/tapedeck")]

    def uploaded() -> bool:
        return any(p["recording"]["status"] == "UPLOADED" for _, p in events())

    _wait("the UPLOADED webhook", uploaded, 60)
    lines = []
    for webhook_id, payload in events():
        what = payload.get("transfer", {}).get("state") or payload["recording"]["status"]
        lines.append(f"{payload['event']:<26} {what:<10} id {webhook_id}  signature verified")
    return lines


_TEARDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _teardown_on_signals() -> Iterator[contextlib.ExitStack]:
    """An ExitStack for everything started, closed on the way out however that comes: SIGTERM
    (make's, a CI's) and SIGHUP (a closed terminal) interrupt as Ctrl-C does, and no second
    Ctrl-C cuts the teardown short."""

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in _TEARDOWN_SIGNALS[1:]}
    stack = contextlib.ExitStack()
    try:
        yield stack
    finally:
        for sig in _TEARDOWN_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        try:
            stack.close()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_demo(opts: DemoOptions) -> int:
    if os.geteuid() != 0:
        print(
            "make demo runs pods as local processes, each in a mount namespace of its own, "
            "which needs root: run it as root (sudo make demo)",
            file=sys.stderr,
        )
        return 1
    for directory in (opts.state, opts.out):
        _fresh(directory)
    logs = opts.state / "logs"
    logs.mkdir()
    env = dict(
        os.environ,
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONUNBUFFERED="1",  # children's logs as they happen
    )
    problems: list[str] = []
    try:
        with _teardown_on_signals() as stack:
            _say("control plane: etcd, kube-apiserver and kube-controller-manager on 127.0.0.1")
            cluster = LocalCluster(opts.state / "cluster")
            stack.callback(cluster.down)
            kubeconfig = cluster.up()
            kubectl = _Kubectl(cluster.binaries().kubectl, kubeconfig)
            # `source demo-out/env` gives another terminal this cluster, kubectl and the plugin.
            (opts.state / "env").write_text(
                f"export KUBECONFIG={kubeconfig.resolve()}\n"
                f"export PATH={Path(kubectl.argv[0]).parent}:{BIN}:$PATH\n"
            )
            kubelet = _spawn(
                kubelet_command(kubeconfig, opts.state / "pods"), logs / "kubelet.log", env
            )
            stack.callback(stop_group, kubelet, 60)

            _say("Janus (VideoRoom), SeaweedFS (S3) and a webhook receiver")
            janus = JanusServer(opts.state / "janus")
            stack.callback(janus.down)
            janus.up()
            seaweed = SeaweedFS(
                opts.state / "s3",
                SeaweedPorts(first=17600),
                access_key=ACCESS_KEY,
                secret_key=SECRET_KEY,
            )
            stack.callback(seaweed.down)
            seaweed.up()
            _bucket(seaweed)
            logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # one line per hook
            receiver = Receiver()
            receiver.start()
            stack.callback(receiver.close)
            webhook_secret = new_secret()

            _say("the Helm chart: CRD, RBAC, settings and the operator (run by the kubelet)")
            _install_chart(opts, kubectl, _chart_values(seaweed, receiver), webhook_secret)

            _say("a meeting of 4 participants: dave joins late, carol leaves early")
            # Started now, so that the join and the leave fall inside the recording.
            meeting = _spawn(
                [str(BIN / "tapedeck-dev"), "meeting", "--room", str(ROOM), *PARTICIPANTS],
                logs / "meeting.log",
                env,
            )
            stack.callback(stop_group, meeting)
            # The meeting creates the room before its first participant joins.
            _wait("the meeting's room", lambda: _joined(meeting, logs / "meeting.log"), 90)

            _say(f"kubectl apply -f examples/recording.yaml; stop after {opts.seconds:.0f} s")
            kubectl("-n", NAMESPACE, "apply", "-f", str(opts.repo / "examples/recording.yaml"))
            driver = threading.Thread(
                target=_drive, args=(kubectl, opts.seconds, problems), daemon=True
            )
            driver.start()
            plugin_env = dict(env, KUBECONFIG=str(kubeconfig))
            subprocess.run(
                [str(BIN / "kubectl-tapedeck"), "-n", NAMESPACE, "status", RECORDING, "--watch"],
                env=plugin_env, check=True, timeout=opts.seconds + 300,
            )  # fmt: skip
            driver.join(timeout=5)
            if problems:
                raise RuntimeError("; ".join(problems))
            status = kubectl.status()
            if status.get("phase") != "UPLOADED":
                raise RuntimeError(
                    f"the recording ended {status.get('phase')}: {status.get('error')}"
                )

            _say(f"kubectl tapedeck download {RECORDING} --dir {opts.out}")
            subprocess.run(
                [str(BIN / "kubectl-tapedeck"), "-n", NAMESPACE, "download", RECORDING,
                 "--dir", str(opts.out)],
                env=plugin_env, check=True, timeout=300,
            )  # fmt: skip
            [composite] = [o for o in status["outputs"] if o["kind"] == "composite"]
            sheet = opts.out / "contact-sheet.png"
            contact_sheet(opts.out / Path(composite["key"]).name, sheet)

            _say("webhooks received on 127.0.0.1 (Standard Webhooks, checked with its library)")
            for line in _webhooks(receiver, webhook_secret):
                print("  " + line)

            _summary(opts, status, sheet)
            if opts.hold:
                print("\nPress Ctrl-C to stop everything.", flush=True)
                threading.Event().wait()
    except KeyboardInterrupt:
        print("\ninterrupted: everything is stopped.", file=sys.stderr)
        return 130
    except (RuntimeError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        print(f"\ndemo failed: {error}\n(logs in {logs})", file=sys.stderr)
        return 1
    print("\ndone: everything is stopped; the outputs stay in " + str(opts.out))
    return 0


def _fresh(directory: Path) -> None:
    """Empty the directory of an earlier run. Only below the working directory, so that a
    mistyped --state or --out never wipes anything else."""
    here, target = Path.cwd().resolve(), directory.resolve()
    if target == here or not target.is_relative_to(here):
        raise SystemExit(f"tapedeck-dev demo: {directory} must be a folder below {here}")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)


def _bucket(seaweed: SeaweedFS) -> None:
    spec = StorageSpec(type="s3", region="us-east-1", endpoint=seaweed.endpoint,
                       bucket="recordings", secret_ref={"name": "demo-storage"})  # fmt: skip
    credentials = {STORAGE_SECRET_ENV["accessKeyId"]: ACCESS_KEY,
                   STORAGE_SECRET_ENV["secretAccessKey"]: SECRET_KEY}  # fmt: skip
    store = open_store(spec, credentials_from_env(credentials, spec.type))
    try:
        store.ensure_bucket()
    finally:
        store.close()


def _summary(opts: DemoOptions, status: dict[str, Any], sheet: Path) -> None:
    _say("where everything is")
    files = sorted(p.name for p in opts.out.iterdir())
    print(f"  outputs:        {opts.out}/ ({', '.join(files)})")
    print(f"  contact sheet:  {sheet}")
    print(f"  bucket:         {status['outputs'][0]['key'].split('/')[0]}/... in s3://recordings")
    print(f"  logs:           {opts.state / 'logs'}/, pods' logs under {opts.state / 'pods'}/")
    print(f"  chart values:   {opts.state / 'values.yaml'} (rendered: {opts.state / 'chart.yaml'})")
    print("\nLook around, in another terminal, while it holds:")
    print(f"  source {opts.state / 'env'}")
    for command in (
        "kubectl get recordings",
        f"kubectl describe recording {RECORDING}",
        f"kubectl tapedeck status {RECORDING}",
        f"kubectl tapedeck logs {RECORDING}",
        f"kubectl get events --field-selector involvedObject.name={RECORDING}",
        f"kubectl -n {OPERATOR_NAMESPACE} logs deploy/tapedeck",
    ):
        print(f"  {command}")
