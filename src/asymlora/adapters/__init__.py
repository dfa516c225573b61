"""What an adapter is: config, initialisers, the adapted layer, injection and files. Torch only."""
