"""Where numbers come from: IDX files, MNIST and its split, downloads, distortions."""
