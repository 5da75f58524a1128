"""tapedeck's data plane: the bot that joins a meeting, records it and uploads the files."""
