"""Training, evaluation and plotting."""
