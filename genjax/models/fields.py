"""The config fields that several families share, each written once: its meaning, its checks and,
for ``output="auto"``, the rule that resolves it (sigmoid for images, linear for vectors)."""
from __future__ import annotations

from typing import Any

from genjax.core import config as cfg_lib
from genjax.nn import losses, nets


def _output_for_data(value: str, config: Any, context: cfg_lib.Context) -> str:
    return losses.default_output(context.data_shape) if value == "auto" else value


LATENT_DIM = cfg_lib.Spec("size of the code z", (cfg_lib.positive,))
BATCH_SIZE = cfg_lib.Spec("examples per batch", (cfg_lib.positive,))
ARCHITECTURE = cfg_lib.Spec(f"networks: {' or '.join(nets.ARCHITECTURES)} (conv: images only)",
                            (cfg_lib.choice(nets.ARCHITECTURES),))


def _architecture_for_data(value: str, config: Any, context: cfg_lib.Context) -> str:
    return nets.default_architecture(context.data_shape, len(config.conv_channels)) if value == "auto" else value


AUTO_ARCHITECTURE = cfg_lib.Spec(
    f"networks: auto (conv for images of {nets.CONV_MIN_SIZE}x{nets.CONV_MIN_SIZE} pixels and up whose sides the "
    f"stride-2 layers halve exactly, else mlp), {' or '.join(nets.ARCHITECTURES)} (conv: images only)",
    (cfg_lib.choice(("auto", *nets.ARCHITECTURES)),), resolve=_architecture_for_data)
HIDDEN_DIMS = cfg_lib.Spec("dense widths (conv: between the convolutions and the code; may be empty)",
                          (cfg_lib.widths(allow_empty=True),))
CONV_CHANNELS = cfg_lib.Spec("channels of the stride-2 convolutions (the decoder mirrors them)", (cfg_lib.widths(),))
ACTIVATION = cfg_lib.Spec(f"hidden activation: {', '.join(nets.ACTIVATIONS)}", (cfg_lib.choice(nets.ACTIVATIONS),))
OUTPUT = cfg_lib.Spec("outputs: auto (sigmoid for images, linear for vectors), sigmoid or linear",
                      (cfg_lib.choice(losses.OUTPUTS),), resolve=_output_for_data)
