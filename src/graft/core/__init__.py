"""The bottom layer: the error type, typed config, atomic artifacts, typed stage outputs, file formats, hardware."""
