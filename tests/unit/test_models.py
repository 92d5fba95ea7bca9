"""Model zoo: shapes, softmax, seeding, options, weight files and a tiny fit."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from karyoflow.models import (  # noqa: E402
    MODELS,
    build_model,
    default_input_size,
    measure_throughput,
    min_input_size,
    model_options,
)

# The smallest input each architecture is tested at (keeps the module well under a minute).
TINY = {
    "hu2019": (32, 16, 1),
    "resnet18": (32, 16, 1),
    "karyonet_fast": (32, 16, 1),
    "resnet50": (32, 32, 1),
    "vgg16": (32, 32, 1),
    "inception_v3": (75, 75, 1),
}


def _images(shape, n=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, *shape)).astype("float32")


def test_registry_keys():
    assert set(MODELS) == set(TINY)


@pytest.mark.parametrize("name", sorted(TINY))
def test_output_is_softmax(name):
    shape = TINY[name]
    model = build_model(name, shape, seed=0)
    probs = model.predict_on_batch(_images(shape))
    assert probs.shape == (2, 24)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all()


@pytest.mark.parametrize("name", ["hu2019", "karyonet_fast", "resnet18", "vgg16"])
def test_same_seed_same_initial_weights(name):
    shape = TINY[name]
    a = build_model(name, shape, seed=7).get_weights()
    b = build_model(name, shape, seed=7).get_weights()
    c = build_model(name, shape, seed=8).get_weights()
    assert len(a) == len(b)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_num_classes():
    model = build_model("karyonet_fast", (32, 16, 1), num_classes=5, seed=0)
    assert model.output_shape == (None, 5)


def test_unknown_name_lists_models():
    with pytest.raises(ValueError, match="karyonet_fast") as err:
        build_model("alexnet", (32, 16, 1))
    assert "hu2019" in str(err.value)
    with pytest.raises(ValueError, match="unknown model"):
        default_input_size("alexnet")


def test_unknown_option():
    with pytest.raises(ValueError, match=r"unknown option.*'widht'.*valid options: .*width"):
        build_model("karyonet_fast", (32, 16, 1), options={"widht": 2})


def test_options_are_applied():
    small = build_model("karyonet_fast", (32, 16, 1), options={"width": 0.5}, seed=0)
    big = build_model("karyonet_fast", (32, 16, 1), options={"width": 1.5, "se": True}, seed=0)
    assert small.count_params() < big.count_params()
    vgg = build_model("vgg16", (32, 32, 1), options={"fc_units": (64,)}, seed=0)
    assert vgg.get_layer("fc1").units == 64
    assert "fc2" not in [layer.name for layer in vgg.layers]
    assert "dropout_dense" in model_options("hu2019")


def test_input_too_small():
    with pytest.raises(ValueError, match="smaller than the minimum 32x32"):
        build_model("vgg16", (32, 16, 1))
    with pytest.raises(ValueError, match=r"\(H, W, 1\)"):
        build_model("hu2019", (32, 16, 3))


def test_resize_to_and_rgb():
    options = {"resize_to": (32, 32), "rgb": True, "fc_units": (16,)}
    model = build_model("vgg16", (24, 12, 1), options=options, seed=0)
    assert model.get_layer("vgg16").input_shape[1:] == (32, 32, 3)
    assert model.predict_on_batch(_images((24, 12, 1))).shape == (2, 24)


def test_default_input_sizes():
    assert default_input_size("hu2019") == (220, 100)
    assert default_input_size("karyonet_fast") == (96, 48)
    h, w = default_input_size("inception_v3")
    assert min(h, w) >= 75
    for name in MODELS:
        assert all(
            d >= m for d, m in zip(default_input_size(name), min_input_size(name), strict=True)
        )


@pytest.mark.parametrize(
    ("name", "suffix"),
    [("karyonet_fast", ".weights.h5"), ("hu2019", ".keras"), ("vgg16", ".weights.h5")],
)
def test_weights_round_trip(tmp_path, name, suffix):
    shape = TINY[name]
    model = build_model(name, shape, seed=1)
    path = tmp_path / f"model{suffix}"
    if suffix == ".keras":
        model.save(path)
    else:
        model.save_weights(path)
    loaded = build_model(name, shape, weights=str(path), seed=2)
    x = _images(shape, n=3)
    np.testing.assert_array_equal(model.predict_on_batch(x), loaded.predict_on_batch(x))


def test_incompatible_weights(tmp_path):
    path = tmp_path / "k.weights.h5"
    build_model("karyonet_fast", (32, 16, 1), seed=0).save_weights(path)
    with pytest.raises(ValueError, match="does not fit model 'karyonet_fast'"):
        build_model("karyonet_fast", (32, 16, 1), num_classes=10, weights=path)
    with pytest.raises(ValueError, match="does not fit model 'hu2019'"):
        build_model("hu2019", (32, 16, 1), weights=path)
    with pytest.raises(FileNotFoundError):
        build_model("karyonet_fast", (32, 16, 1), weights=tmp_path / "missing.weights.h5")
    bad = tmp_path / "k.h5"
    bad.write_bytes(b"")
    with pytest.raises(ValueError, match=r"weights\.h5"):
        build_model("karyonet_fast", (32, 16, 1), weights=bad)


@pytest.mark.parametrize("name", ["hu2019", "karyonet_fast"])
def test_one_epoch_fit(name):
    shape = TINY[name]
    model = build_model(name, shape, seed=0)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 24, size=32)
    history = model.fit(_images(shape, n=32), y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # The compiled model is reused (no new graph to trace), so this is quick.
    assert measure_throughput(model, shape, batch=16, steps=1, warmup=1) > 0


def test_float32_output_under_mixed_precision():
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_bfloat16")
        model = build_model("karyonet_fast", (32, 16, 1), seed=0)
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer("logits").compute_dtype == "bfloat16"
    assert model.output.dtype == "float32"
