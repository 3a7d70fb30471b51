"""transforms: preprocessing, exact affine moves, seeded random augmentation."""

import pytest
import torch

from siamese_lib import data, transforms


@pytest.fixture(scope="module")
def digits():
    return transforms.preprocess(data.load_mnist("embedded").train.images[:4])


def test_preprocess():
    images = torch.tensor([[[0] * 28] * 28, [[255] * 28] * 28], dtype=torch.uint8)
    x = transforms.preprocess(images)
    assert x.shape == (2, 1, 28, 28) and x.dtype == torch.float32
    assert x[0].unique().item() == pytest.approx(transforms.BACKGROUND)
    assert x[1].unique().item() == pytest.approx((1 - transforms.MNIST_MEAN) / transforms.MNIST_STD)
    with pytest.raises(ValueError, match="uint8"):
        transforms.preprocess(images.float())
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        transforms.preprocess(images[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_affine_identity_rotation_and_shifts_move_pixels_exactly(digits, dtype):
    x = digits.to(dtype)
    n = len(x)
    none, ones = torch.zeros(n), torch.ones(n)
    torch.testing.assert_close(transforms.affine(x, none, ones, torch.zeros(n, 2)), x, atol=1e-4, rtol=0)
    # a quarter turn maps pixel centres onto pixel centres: exactly torch.rot90, counter-clockwise
    quarter = transforms.affine(x, torch.full((n,), torch.pi / 2), ones, torch.zeros(n, 2))
    torch.testing.assert_close(quarter, torch.rot90(x, 1, (2, 3)), atol=1e-4, rtol=0)
    # whole-pixel shifts: right by 3, down by 2, with background coming in
    moved = transforms.affine(x, none, ones, torch.tensor([[3 / 28, 2 / 28]] * n))
    expected = torch.full_like(x, transforms.BACKGROUND)
    expected[..., 2:, 3:] = x[..., :-2, :-3]
    torch.testing.assert_close(moved, expected, atol=1e-4, rtol=0)
    assert moved.dtype == dtype
    # zooming out by 2 keeps the centre pixel and fills the border with background
    small = transforms.affine(x, none, 0.5 * ones, torch.zeros(n, 2))
    assert torch.allclose(small[..., :6, :], torch.tensor(transforms.BACKGROUND, dtype=dtype))


def test_random_affine_is_per_image_seeded_and_checked(digits):
    x = digits[:1].repeat(8, 1, 1, 1)  # eight copies of one image
    augment = transforms.RandomAffine(degrees=15, translate=0.1, scale=(0.9, 1.1))
    out = augment(x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert len({tuple(img.flatten()[::7].tolist()) for img in out}) == 8  # each copy moved differently
    assert torch.equal(augment(x, generator=torch.Generator().manual_seed(0)), out)
    assert not torch.equal(augment(x, generator=torch.Generator().manual_seed(1)), out)
    # without a generator it draws from the global one, so seeding that reproduces it too
    torch.manual_seed(0)
    first = augment(x)
    torch.manual_seed(0)
    assert torch.equal(augment(x), first)
    assert augment(x[0]).shape == x[0].shape  # one image (1, 28, 28) as well
    no_change = transforms.RandomAffine(degrees=0, translate=0, scale=(1, 1))
    torch.testing.assert_close(no_change(x), x, atol=1e-4, rtol=0)
    assert repr(augment) == "RandomAffine(degrees=15, translate=0.1, scale=(0.9, 1.1))"
    for kwargs, message in (({"degrees": -1}, "degrees must be a number in \\[0, 180\\], got -1"),
                            ({"translate": 0.5}, "translate must be a number in \\[0, 0.5\\), got 0.5"),
                            ({"degrees": True}, "degrees must be a number"),
                            ({"scale": (1.1, 0.9)}, "scale must be"), ({"scale": (0, 1)}, "scale must be")):
        with pytest.raises(ValueError, match=message):
            transforms.RandomAffine(**kwargs)
    with pytest.raises(ValueError, match="x must be a float tensor"):
        augment(torch.zeros(2, 28, 28, dtype=torch.uint8))  # raw pixels, not preprocessed
