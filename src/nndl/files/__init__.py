"""What goes to disk: atomic writes, model files (.npz and the book's network2 JSON), figures."""
