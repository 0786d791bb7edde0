"""Spiking networks on tiles: LIF reservoir, softmax readout, contrastive heads, event types."""
