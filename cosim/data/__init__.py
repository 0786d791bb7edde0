"""Event datasets: embedded digits, spoken digits, neural-sim, N-MNIST, N-TIDIGITS, your files."""
