"""COCO class names: the TF Object Detection API's 90 ids (with gaps) and the 80-class list YOLO exports use."""

from __future__ import annotations

# Index = TF OD API class id (1..90); None = an id COCO defined but never annotated (street sign, hat, ...).
COCO_TF_IDS: tuple[str | None, ...] = (
    None, "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", None, "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", None, "backpack", "umbrella", None,
    None, "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", None,
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
    None, "dining table", None, None, "toilet", None, "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", None, "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)

# The 80 annotated classes in id order: the class order of YOLO models trained on COCO.
COCO_80: tuple[str, ...] = tuple(name for name in COCO_TF_IDS if name is not None)
