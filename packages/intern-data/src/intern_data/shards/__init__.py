"""Webdataset shards of the one sample schema: codec, writer, reader, resume position, transforms.

Example::

    write_shards(samples, "shards/pets", dataset="pets", split="train", label_space=space)
    loader = make_pipeline(
        "shards/pets", split="train", batch_size=64, num_workers=4, shuffle_buffer=1000,
        transform=classification_transform(224),
    )
"""

from intern_data.shards.batched import BatchAugment, CropDraw
from intern_data.shards.codec import SampleDecodeError, decode_sample, encode_sample, iter_tar_samples
from intern_data.shards.collate import PAD_KEY, collate_samples, detection_collate, drop_padding
from intern_data.shards.index import ShardInfo, ShardIntegrityError, load_index, split_shards
from intern_data.shards.position import ReaderPosition, WorkerCursor
from intern_data.shards.reader import (
    ShardDataset,
    ShardLoader,
    ShardSource,
    SkipRateError,
    batch_sizes,
    make_pipeline,
    plan_epoch,
)
from intern_data.shards.transforms import (
    Depth,
    SampleTransform,
    classification_transform,
    depth_transform,
    detection_transform,
    image_text_transform,
    segmentation_transform,
)
from intern_data.shards.writer import ShardWriteError, shard_name, write_shards

from .labelled_keys import labelled_keys

__all__ = [
    "PAD_KEY",
    "drop_padding",
    "BatchAugment",
    "CropDraw",
    "Depth",
    "ReaderPosition",
    "SampleDecodeError",
    "SampleTransform",
    "ShardDataset",
    "ShardInfo",
    "ShardIntegrityError",
    "ShardLoader",
    "ShardSource",
    "ShardWriteError",
    "SkipRateError",
    "WorkerCursor",
    "batch_sizes",
    "classification_transform",
    "collate_samples",
    "decode_sample",
    "depth_transform",
    "detection_collate",
    "detection_transform",
    "encode_sample",
    "image_text_transform",
    "iter_tar_samples",
    "labelled_keys",
    "load_index",
    "make_pipeline",
    "plan_epoch",
    "segmentation_transform",
    "shard_name",
    "split_shards",
    "write_shards",
]
