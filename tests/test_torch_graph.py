"""The convolution of the torch graph stays exact on integer values, whatever cuDNN would choose."""

import pytest
import torch
import torch.nn.functional as F

from vistream_neuro.torch_graph import conv2d, unfolded_conv2d


def integer_case(seed: int, channels: int = 16, size: tuple[int, int] = (13, 17), kernel=(3, 3)):
    """Inputs, weights and bias whose every partial sum stays below 2^24 (exact in float32)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(-255, 256, (4, channels, *size), generator=g).double()
    weight = torch.randint(-15, 16, (8, channels, *kernel), generator=g).double()
    bias = torch.randint(-1000, 1001, (8,), generator=g).double()
    return x, weight, bias


@pytest.mark.parametrize("kernel,stride,padding", [((3, 3), (1, 1), (1, 1)), ((7, 7), (2, 2), (3, 3)),
                                                   ((3, 5), (2, 1), (0, 2)), ((1, 1), (1, 1), (0, 0))])
def test_unfolded_convolution_is_the_convolution(kernel, stride, padding):
    x, weight, bias = integer_case(0, kernel=kernel)
    expected = F.conv2d(x, weight, bias, stride, padding)  # float64: exact on these integers
    got = unfolded_conv2d(x.float(), weight.float(), bias.float(), stride, padding)
    assert got.shape == expected.shape
    assert torch.equal(got.double(), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here: the CUDA check did not run")
def test_cuda_convolutions_are_exact_on_integers():
    """Wide 3x3 convolutions (where cuDNN may pick Winograd or FFT) and depthwise ones."""
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    for groups, channels in ((1, 128), (128, 128)):
        x, weight, bias = integer_case(1, channels, (56, 56))
        weight = weight[:, : channels // groups].repeat(channels // 8, 1, 1, 1)
        expected = F.conv2d(x, weight, bias.repeat(channels // 8), 1, 1, 1, groups)
        got = conv2d(x.float().cuda(), weight.float().cuda(), bias.repeat(channels // 8).float().cuda(),
                     (1, 1), (1, 1), groups)
        assert torch.equal(got.cpu().double(), expected), groups
