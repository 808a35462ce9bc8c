"""The 26 downstream datasets of GV-B (paper section 9.1, Table 31), read from user-made shards.

None can be downloaded here: a user fetches a dataset, arranges it as ``source.layout`` says and runs
``spec.shard_command(data_root, native_root)``. Classification datasets use the class-per-folder
layout; where the official release is in another form (``.mat``, HDF5, CSV, videos), the layout says
what to export. Sizes and class counts are Table 31's.
"""

from __future__ import annotations

from intern_bench.tasks.spec import DataSource, MetricName, TaskSpec

_CLS_SUITES = ("gvb", "gvb_cls")
_DENSE_SUITES = ("gvb", "gvb_dense")
_LONG_PROBE = "linear probe: 100,000 SGD iterations instead of 10,000 (paper 9.3)"


def _classification(
    name: str,
    title: str,
    classes: int,
    train: int,
    test: int,
    group: str,
    *,
    metric: MetricName = "accuracy",
    test_split: str = "test",
    export: str = "",
    notes: str = "",
) -> TaskSpec:
    """A Table 31 classification dataset in the ``image_folder`` layout."""
    layout = f"ROOT/{{train,{test_split}}}/<class>/<image>, {classes} class folders"
    return TaskSpec(
        name=name,
        title=title,
        type="classification",
        num_classes=classes,
        train_size=train,
        test_size=test,
        metric=metric,
        source=DataSource("reader", "image_folder", f"{layout}; {export}" if export else layout),
        splits={"train": "train", "test": test_split},
        section="9.1 (classification: " + group + ")",
        notes=notes,
        suites=_CLS_SUITES,
    )


CLASSIFICATION: tuple[TaskSpec, ...] = (
    _classification("cifar10", "CIFAR-10", 10, 50_000, 10_000, "general objects",
                    export="images exported from the python batches"),
    _classification("cifar100", "CIFAR-100", 100, 50_000, 10_000, "general objects",
                    export="images exported from the python batches, fine labels"),
    _classification("food101", "Food-101", 101, 75_750, 25_250, "fine-grained",
                    export="split by meta/train.txt and meta/test.txt"),
    _classification("pets", "Oxford-IIIT Pets", 37, 3_680, 3_669, "fine-grained",
                    metric="mean_per_class_accuracy",
                    export="train = annotations/trainval.txt, test = annotations/test.txt"),
    _classification("flowers102", "Oxford 102 Flower", 102, 2_040, 6_149, "fine-grained",
                    metric="mean_per_class_accuracy",
                    export="train = trnid + valid of setid.mat, test = tstid; labels from imagelabels.mat"),
    _classification("sun397", "SUN397", 397, 19_850, 19_850, "scene",
                    export="first of the ten official partitions (Training_01 / Testing_01)"),
    _classification("stanford_cars", "Stanford Cars", 196, 8_144, 8_041, "fine-grained",
                    export="labels from devkit cars_train_annos.mat / cars_test_annos_withlabels.mat"),
    _classification("dtd", "DTD", 47, 3_760, 1_880, "texture",
                    export="train = train1 + val1, test = test1 of labels/"),
    _classification("caltech101", "Caltech-101", 102, 3_060, 6_085, "general objects",
                    metric="mean_per_class_accuracy",
                    export="30 training images per class (BACKGROUND_Google kept as a class), the rest test"),
    _classification("fgvc_aircraft", "FGVC-Aircraft", 100, 6_667, 3_333, "fine-grained",
                    metric="mean_per_class_accuracy",
                    export="variants; train = images_variant_trainval.txt, test = images_variant_test.txt"),
    _classification("svhn", "SVHN", 10, 73_257, 26_032, "general objects",
                    export="images exported from train_32x32.mat / test_32x32.mat, label 10 -> class 0"),
    _classification("eurosat", "EuroSAT", 10, 21_600, 5_400, "remote sensing",
                    export="RGB release, a fixed 80 / 20 split per class"),
    _classification("resisc45", "RESISC45", 45, 25_200, 6_300, "remote sensing",
                    export="NWPU-RESISC45, a fixed 80 / 20 split per class"),
    _classification("retinopathy", "Retinopathy", 5, 46_032, 42_670, "medical",
                    export="Kaggle diabetic retinopathy, class folders 0-4 from the grade CSVs"),
    _classification("fer2013", "FER2013", 7, 28_709, 3_589, "human-related",
                    export="48 x 48 images exported from fer2013.csv; train = Training, test = PublicTest"),
    _classification("ucf101", "UCF101", 101, 9_537, 3_696, "human-related",
                    export="the middle frame of each video (paper 9.1), official split 1"),
    _classification("gtsrb", "GTSRB", 43, 39_209, 12_630, "traffic signs",
                    export="test images sorted into class folders by GT-final_test.csv"),
    _classification("patch_camelyon", "PatchCamelyon", 2, 294_912, 32_768, "medical",
                    export="96 x 96 patches exported from the HDF5 files", notes=_LONG_PROBE),
    _classification("imagenet", "ImageNet", 1000, 1_281_167, 50_000, "general objects", test_split="val",
                    export="the validation set (test split) sorted into class folders", notes=_LONG_PROBE),
    _classification("kinetics700", "Kinetics-700", 700, 542_285, 34_819, "human-related", test_split="val",
                    export="the middle frame of each video (paper 9.1); the validation set is the test split",
                    notes=_LONG_PROBE),
)  # fmt: skip

DENSE: tuple[TaskSpec, ...] = (
    TaskSpec(
        name="voc0712",
        title="VOC07+12",
        type="detection",
        num_classes=20,
        train_size=16_551,
        test_size=4_952,
        metric="ap50",
        source=DataSource(
            "reader",
            "voc",
            "one VOC-format folder merging VOC2007 and VOC2012: ROOT/{Annotations,JPEGImages}/ holding both "
            "years' files, ROOT/ImageSets/Main/trainval.txt = 2007 trainval + 2012 trainval ids, "
            "ROOT/ImageSets/Main/test.txt = 2007 test ids",
        ),
        splits={"train": "trainval", "test": "test"},
        section="9.1 (object detection)",
        notes="VOC2007 11-point AP50 on VOC2007 test; difficult objects are left out of the boxes",
        suites=_DENSE_SUITES,
    ),
    TaskSpec(
        name="wider_face",
        title="WIDER FACE",
        type="face_detection",
        num_classes=1,
        train_size=12_880,
        test_size=3_226,
        metric="ap50_easy_medium_hard",
        source=DataSource(
            "reader",
            "coco",
            "WIDER FACE converted to COCO JSON: ROOT/annotations/instances_{train,val}.json "
            "(one category, face), images in ROOT/{train,val}/",
        ),
        splits={"train": "train", "test": "val"},
        section="9.1 (face detection)",
        notes="Table 31 lists 2 classes (face + background); AP50 on the easy / medium / hard subsets "
        "needs the official per-image face lists (wider_{easy,medium,hard}_val.mat) at evaluation",
        suites=_DENSE_SUITES,
    ),
    TaskSpec(
        name="citypersons",
        title="CityPersons",
        type="pedestrian_detection",
        num_classes=1,
        train_size=2_975,
        test_size=500,
        metric="mr2",
        source=DataSource(
            "reader",
            "coco",
            "CityPersons converted to COCO JSON: ROOT/annotations/instances_{train,val}.json "
            "(one category, person; full boxes), Cityscapes leftImg8bit images in ROOT/{train,val}/",
        ),
        splits={"train": "train", "test": "val"},
        section="9.1 (pedestrian detection)",
        notes="MR^-2 on the reasonable and heavy-occlusion setups of the 500 validation images; "
        "the setups need the visible boxes of the annotation at evaluation",
        suites=_DENSE_SUITES,
    ),
    TaskSpec(
        name="voc2012_seg",
        title="VOC2012",
        type="segmentation",
        num_classes=21,
        train_size=10_582,
        test_size=1_449,
        metric="miou",
        source=DataSource(
            "reader",
            "seg_png",
            "VOCdevkit/VOC2012 as ROOT with the SBD augmented masks: ROOT/JPEGImages/<id>.jpg, "
            "ROOT/SegmentationClassAug/<id>.png, ROOT/ImageSets/Segmentation/{train_aug,val}.txt",
            {"layout": "voc", "label_dir": "SegmentationClassAug"},
        ),
        splits={"train": "train_aug", "test": "val"},
        section="9.1 (semantic segmentation)",
        notes="trainaug (10,582) for training, val (1,449) for test; mIoU over 20 objects + background",
        suites=_DENSE_SUITES,
    ),
    TaskSpec(
        name="nyuv2",
        title="NYUv2",
        type="depth",
        num_classes=None,
        train_size=24_231,
        test_size=653,
        metric="rmse",
        source=DataSource(
            "reader",
            "depth_png",
            "BTS-style export: ROOT/nyudepthv2_{train,test}_files_with_gt.txt with '<image> <depth>' lines "
            "relative to ROOT; depth PNGs uint16 in millimetres",
            {"scale": "nyu", "pairs": "nyudepthv2_{split}_files_with_gt.txt"},
        ),
        section="9.1 (depth estimation)",
        notes="Table 31 lists 653 test images (the usual Eigen test set has 654); max depth 10 m",
        suites=_DENSE_SUITES,
    ),
    TaskSpec(
        name="kitti",
        title="KITTI",
        type="depth",
        num_classes=None,
        train_size=23_157,
        test_size=696,
        metric="rmse",
        source=DataSource(
            "reader",
            "depth_png",
            "BTS-style Eigen split: ROOT/eigen_{train,test}_files_with_gt.txt with '<image> <depth>' lines "
            "relative to ROOT (lines with depth None are skipped); depth PNGs uint16 / 256 metres",
            {"scale": "kitti", "pairs": "eigen_{split}_files_with_gt.txt"},
        ),
        section="9.1 (depth estimation)",
        notes="Table 31 lists 696 test images; 652 of the Eigen test images have ground truth; "
        "max depth 80 m, Garg crop",
        suites=_DENSE_SUITES,
    ),
)

GVB_TASKS: tuple[TaskSpec, ...] = CLASSIFICATION + DENSE
