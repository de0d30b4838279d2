"""The learned model's CUDA path: fp16 autocast inference with the state kept on the GPU, and a bf16
training step (batched cameras on CUDA: test_model.py's test_cameras_batched_match_cameras_alone).
Skipped without a CUDA device (CI has none); run where one is lent: `python3 -m pytest test/test_model_cuda.py`.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

from tiny_model import TINY  # noqa: E402

from spatial_memory_ros.bench.scene import make_bench_scene  # noqa: E402
from spatial_memory_ros.model.checkpoint import DEFAULT_CHECKPOINT  # noqa: E402
from spatial_memory_ros.model.losses import LossWeights  # noqa: E402
from spatial_memory_ros.model.model import SpatialMemoryModel  # noqa: E402
from spatial_memory_ros.model.runtime import LearnedChangeDetector  # noqa: E402
from spatial_memory_ros.model.train import chunk_loss  # noqa: E402


@pytest.mark.skipif(not DEFAULT_CHECKPOINT.is_file(), reason="no shipped checkpoint")
def test_cuda_masks_match_cpu_and_the_state_stays_on_the_gpu() -> None:
    """The shipped model on the frames the CPU chance test uses (benchmark seed 102, home, static, 320x240; a
    person walks through from frame 90): the fp16 CUDA masks agree with the fp32 CPU masks on >= 99 % of
    pixels and on >= 90 % of the changed ones (IoU of the two masks), and the memory never leaves the GPU."""
    scene = make_bench_scene("home", "static", 0.3, 102)
    gpu = LearnedChangeDetector(intrinsics=scene.intrinsics, device="cuda")
    cpu = LearnedChangeDetector(intrinsics=scene.intrinsics, device="cpu")
    same = total = inter = union = 0
    for f in scene.frames(limit=150):
        a = gpu.update(f.image, f.T_map_cam).mask > 0
        b = cpu.update(f.image, f.T_map_cam).mask > 0
        assert gpu.state.device.type == "cuda"
        same, total = same + int((a == b).sum()), total + a.size
        inter, union = inter + int((a & b).sum()), union + int((a | b).sum())
    assert union > 0.005 * total, "the frames must hold changes for the comparison to mean anything"
    assert same / total >= 0.99 and inter / union >= 0.9, (same / total, inter / union)
    assert torch.allclose(gpu.state.float().cpu(), cpu.state, atol=0.05), "the memories drifted apart"


def test_cuda_bf16_training_steps_lower_the_loss() -> None:
    """Train as `spatial-memory train` does on CUDA (bf16 autocast): 30 steps on a fixed random sequence lower the
    mask loss by a third and keep it finite."""
    from test_model import moving_square_batch

    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = SpatialMemoryModel.from_config(TINY).to(dev).train()
    batch = {k: v.to(dev) for k, v in moving_square_batch().items()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = last = None
    for _ in range(30):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss, logs, _ = chunk_loss(model, batch, model.initial_state(2, dev), LossWeights())
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)
        first = logs["mask"] if first is None else first
        last = logs["mask"]
    assert first is not None and last is not None
    assert last < 0.67 * first, (first, last)
