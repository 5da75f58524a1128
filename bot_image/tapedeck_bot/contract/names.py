"""Names of the Recording API, shared by the bot, the operator and the CRD generator."""

GROUP = "tapedeck.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Recording"
PLURAL = "recordings"
SINGULAR = "recording"
