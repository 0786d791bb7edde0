"""The tile: backends, read periphery and schemes, resistive network, surrogate and tiling."""
