"""Loihi's bit widths and limits, once: the neurons, the integer graph, netx export and the Lava
backend all read them from here (M. Davies et al., IEEE Micro 38(1), 2018; Loihi 2 keeps them).

This sits in ``neurons/``, the lowest layer, because the Lava ST-BIF process model needs them too.
"""

STATE_BITS = 24  # signed neuron state (an ST-BIF residual, a sigma-delta sigma)
STATE_LIMIT = 2 ** (STATE_BITS - 1)  # |state| < this
MESSAGE_BITS = 24  # a graded spike's payload and a synaptic input current
MESSAGE_LIMIT = 2 ** (MESSAGE_BITS - 1)
WEIGHT_BITS = 8  # signed synaptic weight mantissa; one exponent per synapse group


def weight_limit(bits: int = WEIGHT_BITS) -> int:
    """The largest usable mantissa of mixed-sign ``bits``-bit weights: even values only, since Loihi
    drops the lowest mantissa bit of mixed-sign weights (126 at 8 bits)."""
    return 2 ** (bits - 1) - 2
