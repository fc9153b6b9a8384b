"""Spreading a batch over `jax.devices()`: pad the leading axis to a multiple of the device count,
place it with a 1-D `NamedSharding`, and let `jit` partition the vmapped work.

On CPU, expose the cores as devices *before* importing JAX with
`XLA_FLAGS=--xla_force_host_platform_device_count=<cores>` (the benchmarks do); with one device this
is a no-op. Results never depend on the device count: each batch element's computation is unchanged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def pad_and_shard(arrays: list, batched: list[bool], devices=None) -> tuple[list, int]:
    """Pad the batched entries of `arrays` (leading axis) to a multiple of the device count by repeating
    the last element, and shard them over that axis; unbatched entries are replicated. Returns the new
    list and the original batch size (to trim outputs with `out[:n]`)."""
    devices = jax.devices() if devices is None else devices
    sizes = {int(np.shape(a)[0]) for a, b in zip(arrays, batched) if b}
    if len(sizes) != 1:
        raise ValueError(f"batched inputs must share their leading size, got {sorted(sizes)}")
    n = sizes.pop()
    if len(devices) == 1:
        return list(arrays), n
    pad = (-n) % len(devices)
    mesh = Mesh(np.array(devices), ("batch",))
    out = []
    for a, b in zip(arrays, batched):
        a = jnp.asarray(a)
        if b:
            if pad:
                a = jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)])
            out.append(jax.device_put(a, NamedSharding(mesh, PartitionSpec("batch"))))
        else:
            out.append(jax.device_put(a, NamedSharding(mesh, PartitionSpec())))
    return out, n
