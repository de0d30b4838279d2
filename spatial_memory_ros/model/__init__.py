"""The learned spatial memory model (torch, no ROS): encoder + gated recurrent memory + heads.

config.ModelConfig, model.SpatialMemoryModel, checkpoint.build_model, runtime.LearnedChangeDetector (the
pipeline's change backend), train.train (`spatial-memory train`), speed.measure (`spatial-memory
bench-model`). Import the submodules: this package imports nothing, so the CLI starts without torch.
"""
