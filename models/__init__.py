"""Models built only on tinygrad_lite: the MNIST MLP and the character GPT."""
