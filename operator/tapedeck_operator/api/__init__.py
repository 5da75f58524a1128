"""The RealtimeKit-compatible REST API over Recordings (`tapedeck-api`): pure mappings first."""
