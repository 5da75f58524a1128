"""tapedeck's control plane: a kopf operator that runs a bot pod per Recording."""
