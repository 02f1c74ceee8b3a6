"""What several families share: checkpoint weights on disk, length batching, tiny checkpoints, XMOD adapters."""
