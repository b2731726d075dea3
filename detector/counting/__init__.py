"""Counting one photo: load, scale, tile, run the network, merge, and the result it returns."""
