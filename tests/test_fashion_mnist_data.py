"""tools/fashion_mnist.py: the numpy-only Fashion-MNIST loader and PNG folder writer."""

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools import fashion_mnist  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (fashion_mnist.data_dir() / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)


def test_load_test_split_shapes_dtypes_and_balanced_labels():
    images, labels = fashion_mnist.load("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [1000] * 10
    assert images.max() == 255 and images.min() == 0


def test_load_train_split_shapes_and_label_range():
    images, labels = fashion_mnist.load("train")
    assert images.shape == (60000, 28, 28) and labels.shape == (60000,)
    assert labels.min() == 0 and labels.max() == 9
    assert np.bincount(labels).tolist() == [6000] * 10


def test_load_rejects_unknown_split():
    with pytest.raises(ValueError, match="unknown split 'val'"):
        fashion_mnist.load("val")


def test_class_names_are_the_ten_official_names_in_order():
    assert fashion_mnist.CLASS_NAMES[0] == "T-shirt/top"
    assert fashion_mnist.CLASS_NAMES[9] == "Ankle boot"
    assert len(set(fashion_mnist.CLASS_NAMES)) == 10
    assert fashion_mnist.folder_name(0) == "T-shirt_top"


def test_calibration_subset_is_fixed_distinct_sorted_training_indices():
    idx = fashion_mnist.calibration_indices(200, seed=0)
    assert idx.shape == (200,) and len(set(idx.tolist())) == 200
    assert np.all(np.diff(idx) > 0) and idx[0] >= 0 and idx[-1] < 60000
    # Pinned: other tools and committed results depend on exactly this subset.
    assert idx[:5].tolist() == [163, 320, 495, 882, 979]
    np.testing.assert_array_equal(idx, fashion_mnist.calibration_indices())


def test_calibration_images_are_those_training_images_and_seed_changes_them():
    calib = fashion_mnist.calibration_images()
    train, _ = fashion_mnist.load("train")
    assert calib.shape == (200, 28, 28) and calib.dtype == np.uint8
    np.testing.assert_array_equal(calib, train[fashion_mnist.calibration_indices()])
    np.testing.assert_array_equal(calib, fashion_mnist.calibration_images(200, 0))
    assert not np.array_equal(fashion_mnist.calibration_indices(200, 1), fashion_mnist.calibration_indices(200, 0))


def test_missing_dataset_error_says_which_package_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path))
    monkeypatch.setattr(fashion_mnist, "_cache", {})
    with pytest.raises(fashion_mnist.DatasetMissingError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist.load("test")


def test_write_image_folder_labelled_one_subfolder_per_class_png_matches_pixels(tmp_path):
    from PIL import Image

    n = fashion_mnist.write_image_folder(tmp_path, "test", limit=30)
    assert n == 30
    subdirs = sorted(p.name for p in tmp_path.iterdir())
    assert subdirs == sorted(fashion_mnist.folder_name(i) for i in range(10))
    images, labels = fashion_mnist.load("test")
    written = sorted(tmp_path.glob("*/*.png"))
    assert len(written) == 30
    for png in written:
        i = int(png.stem)
        assert png.parent.name == fashion_mnist.folder_name(int(labels[i]))
        with Image.open(png) as im:
            assert im.mode == "L" and im.size == (28, 28)
            np.testing.assert_array_equal(np.asarray(im), images[i])


def test_write_image_folder_flat_calib_writes_the_calibration_images(tmp_path):
    from PIL import Image

    n = fashion_mnist.write_image_folder(tmp_path, "calib", labelled=False)
    assert n == 200
    pngs = sorted(tmp_path.glob("*.png"))
    assert [int(p.stem) for p in pngs] == fashion_mnist.calibration_indices().tolist()
    calib = fashion_mnist.calibration_images()
    with Image.open(pngs[0]) as im:
        np.testing.assert_array_equal(np.asarray(im), calib[0])
