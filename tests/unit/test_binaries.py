"""The tools module that builds the control plane from the Go module proxy."""

from __future__ import annotations

from tapedeck_dev.binaries import staging_replaces

GOMOD = """module k8s.io/kubernetes

go 1.24.0

require (
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/externaljwt => ./staging/src/k8s.io/externaljwt
)
"""


def test_every_staging_module_maps_to_its_published_tag() -> None:
    assert staging_replaces(GOMOD, "v1.34.3") == [
        "k8s.io/api=k8s.io/api@v0.34.3",
        "k8s.io/client-go=k8s.io/client-go@v0.34.3",
        "k8s.io/externaljwt=k8s.io/externaljwt@v0.34.3",
    ]
