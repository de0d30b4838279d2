"""Detector backends behind one interface (ObjectDetector), chosen by detector.backend: see factory.py."""
