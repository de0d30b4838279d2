"""Evaluations on real recordings (Debian's opencv-doc videos + public ground truth): `spatial-memory evaluate`."""
