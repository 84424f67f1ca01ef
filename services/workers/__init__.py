"""Workers: the device a worker finds at start, and the registry where each records itself."""
