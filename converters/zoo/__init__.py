"""Reference float models written in PyTorch, with real pretrained weights, for testing the converter."""
