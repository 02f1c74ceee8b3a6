"""The late-interaction family (ColBERT-XM, MTD ColBERT-X): checkpoints (`checkpoint`), the torch
model (`model`), the systems (`system`), tiny checkpoints (`tiny`), training recipes (`train`,
`losses`, `sampling`) and the PLAID index (`plaid`)."""
