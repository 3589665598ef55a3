"""Networks: every architecture builds at a tiny size and keeps the input's shape."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import BasicUNetPlusPlus

from torch import nn

from pvc_core.networks import ARCHITECTURES, build_network, count_parameters, size_divisor
from pvc_core.networks.recurrent_blocks import RecurrentConv
from pvc_core.networks.unet import FastMRIUNet
from pvc_core.networks.unetpp import NestedUNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny networks on one thread


TINY = [4, 8, 16]


def test_architecture_names_match_the_schema():
    from pvc_core.config import load_schema
    assert set(ARCHITECTURES) == set(load_schema()["$defs"]["architecture"]["enum"])


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_tiny_network_output_shape_and_sign(name):
    torch.manual_seed(0)
    net = build_network(name, TINY)
    x = torch.rand(2, 1, 16, 16, 16)
    y = net(x)
    assert y.shape == x.shape
    assert float(y.detach().min()) >= 0.0
    y.mean().backward()  # trainable end to end
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_non_cubic_input_divisible_by_the_levels(name):
    net = build_network(name, TINY).eval()
    assert size_divisor(TINY) == 4
    x = torch.rand(1, 1, 8, 16, 12)
    with torch.no_grad():
        assert net(x).shape == x.shape


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_untrained_residual_network_is_the_identity(name):
    """The zero-initialised gain makes an untrained network return its (non-negative) input."""
    net = build_network(name, TINY)
    x = torch.rand(1, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.equal(net(x), x)


def test_residual_head_formula_and_switch():
    torch.manual_seed(0)
    res = build_network("unet", TINY)
    plain = build_network("unet", TINY, residual=False)
    assert count_parameters(res) == count_parameters(plain) + 1  # the gain
    with torch.no_grad():
        res.gain.fill_(0.5)
        x = torch.rand(1, 1, 16, 16, 16)
        assert torch.equal(res(x), torch.relu(x + 0.5 * res.body(x)))
        assert float(plain(x).min()) >= 0


def test_unknown_architecture_and_bad_channels():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_network("resnet", TINY)
    with pytest.raises(ValueError, match="channels"):
        build_network("unet", [8])


def test_recurrent_layer_shares_weights_across_steps():
    assert count_parameters(RecurrentConv(4, t=1)) == count_parameters(RecurrentConv(4, t=3))


def test_nested_unet_equals_monai_unetplusplus_at_five_levels():
    """With MONAI's weights copied in, NestedUNet computes exactly BasicUNetPlusPlus' last output."""
    fea = (2, 3, 4, 5, 6)
    torch.manual_seed(0)
    ref = BasicUNetPlusPlus(3, 1, 1, features=fea + (fea[0],)).eval()
    ours = NestedUNet(fea).eval()
    names = {f"encoder.{i}": f"conv_{i}_0" for i in range(5)}
    names.update({f"nodes.{i}_{j}": f"upcat_{i}_{j}" for j in range(1, 5) for i in range(5 - j)})
    names["head"] = "final_conv_0_4"
    ref_state = ref.state_dict()
    mapped = {}
    for key in ours.state_dict():
        prefix = next(p for p in names if key.startswith(p + "."))
        mapped[key] = ref_state[names[prefix] + key[len(prefix):]]
    ours.load_state_dict(mapped)
    x = torch.rand(1, 1, 32, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x)[0], atol=1e-6)
    heads = ("final_conv_0_1", "final_conv_0_2", "final_conv_0_3")  # deep-supervision outputs, unused
    unused = sum(p.numel() for n, p in ref.named_parameters() if n.startswith(heads))
    assert count_parameters(ours) == count_parameters(ref) - unused


# ---- the fastMRI U-Net and instance norm everywhere ---------------------------------------------

def test_fastmri_unet_parameter_count_known_answer():
    """channels [2, 4]: every 3x3x3 and transposed convolution without bias, instance norm without
    affine parameters (fastMRI), a 1x1x1 head with bias."""
    down = 1 * 2 * 27 + 2 * 2 * 27          # ConvBlock(1 -> 2):   54 + 108 = 162
    bottleneck = 2 * 4 * 27 + 4 * 4 * 27    # ConvBlock(2 -> 4):  216 + 432 = 648
    up = 4 * 2 * 8                          # ConvTranspose(4 -> 2, 2x2x2) = 64
    up_conv = 4 * 2 * 27 + 2 * 2 * 27       # ConvBlock(2 + 2 -> 2): 216 + 108 = 324
    head = 2 * 1 + 1                        # Conv3d(2 -> 1, 1x1x1) + bias = 3
    assert down + bottleneck + up + up_conv + head == 1201
    assert count_parameters(FastMRIUNet([2, 4])) == 1201
    assert count_parameters(build_network("unet", [2, 4])) == 1202  # + the residual gain
    assert count_parameters(build_network("unet", [2, 4], residual=False)) == 1201


def test_fastmri_unet_layers():
    net = FastMRIUNet([4, 8, 16])
    convs = [m for m in net.modules() if isinstance(m, nn.Conv3d)]
    assert sum(m.kernel_size == (3, 3, 3) and m.bias is None for m in convs) == 2 * 5  # 2 down, bottleneck, 2 up
    assert [m.kernel_size for m in convs if m.kernel_size == (1, 1, 1)] == [(1, 1, 1)]  # the head
    ups = [m for m in net.modules() if isinstance(m, nn.ConvTranspose3d)]
    assert [(m.kernel_size, m.stride) for m in ups] == [((2, 2, 2), (2, 2, 2))] * 2
    acts = [m for m in net.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 2 * 5 + 2 and all(m.negative_slope == 0.2 for m in acts)
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm3d)]
    assert len(norms) == len(acts) and not any(m.affine for m in norms)


@pytest.mark.parametrize("shape", [(32, 32, 32), (33, 20, 27)])
def test_fastmri_unet_keeps_the_input_shape(shape):
    """32^3, and edges that do not halve evenly (33 -> 16 -> 8, 27 -> 13 -> 6): fastMRI's padding."""
    torch.manual_seed(0)
    net = build_network("unet", TINY, residual=False).eval()
    x = torch.rand(1, 1, *shape)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_no_architecture_uses_batch_norm(name):
    net = build_network(name, TINY)
    assert not [n for n, m in net.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert any(isinstance(m, nn.InstanceNorm3d) for m in net.modules())
    # and it behaves the same in training and evaluation mode (no running statistics)
    torch.manual_seed(1)
    net = build_network(name, TINY, residual=False)
    x = torch.rand(2, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.allclose(net.train()(x), net.eval()(x), atol=1e-6)


def test_attention_gates_keep_their_parameters_with_instance_norm():
    """Swapping the gates' batch norm for affine instance norm keeps MONAI's parameter count."""
    from monai.networks.nets import AttentionUnet

    ref = AttentionUnet(3, 1, 1, channels=tuple(TINY), strides=(2, 2))
    assert any(isinstance(m, nn.BatchNorm3d) for m in ref.modules())
    assert count_parameters(build_network("attention_unet", TINY, residual=False)) == count_parameters(ref)
