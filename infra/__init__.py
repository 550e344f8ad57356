"""What every stage stands on: one-line CLI errors, atomic writes, S3 storage, cloud VM helpers."""
