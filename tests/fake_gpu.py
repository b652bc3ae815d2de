"""A fake GPU for CPU tests: tensors on device ``fakegpu:0`` that compute on the CPU, and that refuse to mix
with CPU tensors the way CUDA tensors do.

The most common CUDA failure of research code is a tensor on the wrong device: a ``torch.zeros(n)`` without
``device=``, a ``.numpy()`` of a device tensor, a CPU tensor fed to a device op. On the CPU both sides are the
CPU, so nothing fails. Under :func:`fake_gpu` the run's device is ``fakegpu:0`` (PyTorch's PrivateUse1 device,
registered under that name, see :func:`register`): ``get_device(gpu)`` returns it for every ``gpu`` but -1,
``.to(device)``, ``torch.zeros(..., device=x.device)`` and ``module.to(device)`` make :class:`FakeGPUTensor`
values (the CPU tensor inside, ``.device == fakegpu:0``), and every aten op checks its tensor inputs like CUDA:

- a fake-GPU tensor with a CPU tensor of one or more dimensions in one op raises :class:`DeviceMismatch`
  (CPU 0-dim tensors are allowed, as CUDA allows CPU scalars; ``copy_``/``to`` and indexing with CPU indices
  are allowed, as on CUDA);
- ``.numpy()`` of a fake-GPU tensor raises CUDA's ``TypeError``; ``.item()``, ``float(t)``, ``.tolist()`` and
  ``.cpu()`` work (host syncs, as on CUDA);
- ``torch.load(map_location=<fake GPU>)`` loads to the CPU, then moves the tensors to the fake GPU;
  ``torch.save`` of fake-GPU tensors writes their CPU values.

CUDA-only branches (``device.type == "cuda"``: nccl, fp16 GradScaler, the lazy NaN flag, pin_memory) are
not taken on ``fakegpu``: they have their own tests (``-m cuda``, and CPU fakes of their logic).

Registering the PrivateUse1 backend changes process-wide state (``torch.accelerator`` then reports
``fakegpu``), so tests use it in a worker process of their own (``tests/test_device_layer.py``).
"""
from __future__ import annotations

import contextlib
import sys
from typing import Any, Iterator

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map_only

DEVICE_TYPE = "fakegpu"
FAKE = torch.device("privateuseone", 0)  # named fakegpu:0 once registered (register())
aten = torch.ops.aten

# ops that take tensors of two devices on CUDA too: copies between devices, indexing with CPU index tensors
_CROSS_DEVICE_OPS = {aten.copy_.default, aten._to_copy.default, aten.index.Tensor, aten.index_put_.default,
                     aten._index_put_impl_.default, aten.index_put.default}
# torch functions that build a tensor from Python data without an aten factory op the dispatch mode would see
_DATA_FACTORIES = {torch.tensor, torch.as_tensor, torch.asarray, torch.scalar_tensor}


class DeviceMismatch(RuntimeError):
    """An op got tensors of the fake GPU and of the CPU (CUDA raises "Expected all tensors to be on the same
    device")."""


class _Backend:
    """The ``torch.fakegpu`` module PyTorch asks a registered device for."""

    def is_initialized(self) -> bool:
        return True

    def is_available(self) -> bool:
        return True

    def current_device(self) -> int:
        return 0

    def device_count(self) -> int:
        return 1

    def _is_in_bad_fork(self) -> bool:
        return False

    def manual_seed_all(self, seed: int) -> None:
        pass

    def get_amp_supported_dtype(self) -> list[torch.dtype]:  # torch.autocast(device_type=...) asks
        return [torch.bfloat16, torch.float16]


def register() -> torch.device:
    """Register PrivateUse1 as ``fakegpu`` (once per process; it cannot be undone); returns ``fakegpu:0``."""
    global FAKE
    if getattr(torch, DEVICE_TYPE, None) is None:
        torch.utils.backend_registration._setup_privateuseone_for_python_backend(
            rename=DEVICE_TYPE, backend_module=_Backend())
    FAKE = torch.device(DEVICE_TYPE, 0)
    return FAKE


def is_fake(device: Any) -> bool:
    """Whether ``device`` (a torch.device, a string or None) is the fake GPU."""
    if isinstance(device, torch.device):
        return device.type in (DEVICE_TYPE, "privateuseone")
    return isinstance(device, str) and device.split(":")[0] in (DEVICE_TYPE, "privateuseone")


def _is_device(d: Any) -> bool:
    if isinstance(d, torch.device):
        return True
    if not isinstance(d, str):
        return False
    try:
        torch.device(d)
    except (RuntimeError, TypeError):
        return False
    return True


class FakeGPUTensor(torch.Tensor):
    """A tensor on ``fakegpu:0`` whose values are the CPU tensor ``elem``."""

    elem: torch.Tensor
    __torch_function__ = torch._C._disabled_torch_function_impl

    @staticmethod
    def __new__(cls, elem: torch.Tensor) -> "FakeGPUTensor":
        out = torch.Tensor._make_wrapper_subclass(
            cls, elem.size(), strides=elem.stride(), storage_offset=elem.storage_offset(), dtype=elem.dtype,
            layout=elem.layout, device=FAKE, requires_grad=elem.requires_grad)
        out.elem = elem
        return out

    def __repr__(self) -> str:
        return f"FakeGPUTensor({self.elem!r})"

    def __reduce_ex__(self, protocol):  # torch.save / pickle: the CPU values
        return self.elem.__reduce_ex__(protocol)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return _run(func, args, kwargs or {})


def _map(fn, obj: Any) -> Any:
    """``fn`` applied to every leaf of the lists, tuples and dicts of an aten op's arguments or outputs (a
    lighter tree_map: the ops of one training step are thousands)."""
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map(fn, o) for o in obj)
    if isinstance(obj, dict):
        return {k: _map(fn, v) for k, v in obj.items()}
    return fn(obj)


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


def _cpu(t: Any) -> Any:
    return t.elem if isinstance(t, FakeGPUTensor) else t


def _wrap(t: Any) -> Any:
    return FakeGPUTensor(t) if isinstance(t, torch.Tensor) and not isinstance(t, FakeGPUTensor) else t


def _check_devices(func, flat: list[torch.Tensor]) -> bool:
    """Whether a fake-GPU tensor takes part; :class:`DeviceMismatch` when another device's tensor (not a
    0-dim CPU one) does too."""
    on_gpu = any(isinstance(t, FakeGPUTensor) for t in flat)
    if not on_gpu or func in _CROSS_DEVICE_OPS:
        return on_gpu
    for t in flat:
        if not isinstance(t, FakeGPUTensor) and (t.dim() > 0 or t.device.type != "cpu"):
            raise DeviceMismatch(
                f"Expected all tensors to be on the same device, but found at least two devices, {FAKE} and "
                f"{t.device}! ({func}: a {t.device} tensor of shape {tuple(t.shape)}; a tensor made without "
                "device= or moved to the CPU meets a tensor on the run's device)")
    return True


def _run(func, args: tuple, kwargs: dict) -> Any:
    """Run an aten op on the CPU values; outputs are on the fake GPU when an input is or ``device=`` says so."""
    flat = list(_tensors((args, kwargs)))
    on_gpu = _check_devices(func, flat)
    # device=..., or positional (aten.to.device reaches the mode undecomposed under inference_mode)
    devices = [d for d in (*args, kwargs.get("device")) if _is_device(d)]
    if devices:
        on_gpu = any(is_fake(d) for d in devices)
        if on_gpu:
            args = tuple(torch.device("cpu") if is_fake(a) else a for a in args)
            kwargs = {k: torch.device("cpu") if is_fake(v) else v for k, v in kwargs.items()}
        gen = kwargs.get("generator")
        if on_gpu and gen is not None and gen.device.type == "cpu":
            raise DeviceMismatch(f"{func}: a CPU generator for a tensor on {FAKE} (CUDA: \"Expected a 'cuda' "
                                 "device type for generator\")")
    out = func(*_map(_cpu, args), **_map(_cpu, kwargs))
    if not on_gpu:
        return out
    base = args[0] if func.is_view and args and isinstance(args[0], FakeGPUTensor) else None
    if base is not None and not base.is_inference():  # a view of a normal tensor is normal in inference_mode too
        with torch.inference_mode(False):
            return _map(_wrap, out)
    return _mutated_inputs(func, args, kwargs, _map(_wrap, out))


def _mutated_inputs(func, args: tuple, kwargs: dict, out: Any) -> Any:
    """In-place and ``out=`` ops return the input they wrote to (the same Python object), as aten does."""
    schema = func._schema
    written = [r.alias_info for r in schema.returns]
    if not any(a is not None and a.is_write for a in written):
        return out
    by_alias = {}
    for i, arg in enumerate(schema.arguments):
        if arg.alias_info is not None and arg.alias_info.is_write:
            value = args[i] if i < len(args) and not arg.kwarg_only else kwargs.get(arg.name)
            by_alias[frozenset(arg.alias_info.before_set)] = value
    results = [by_alias.get(frozenset(a.before_set), o) if a is not None and a.is_write else o
               for a, o in zip(written, out if len(written) > 1 else (out,))]
    return tuple(results) if len(written) > 1 else results[0]


class _Dispatch(TorchDispatchMode):
    """Sees every aten op, factories included (``torch.zeros(..., device=fake)``)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return _run(func, args, kwargs or {})


class _Functions(TorchFunctionMode):
    """What the dispatch mode cannot see: tensors from Python data, ``.numpy()`` and ``.tolist()``."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _DATA_FACTORIES and is_fake(kwargs.get("device")):
            return func(*args, **{**kwargs, "device": "cpu"}).to(FAKE)
        if func in (torch.Tensor.numpy, torch.Tensor.__array__) and isinstance(args[0], FakeGPUTensor):
            raise TypeError(f"can't convert {FAKE} device type tensor to numpy. Use Tensor.cpu() to copy the tensor "
                            "to host memory first.")
        if func is torch.Tensor.tolist and isinstance(args[0], FakeGPUTensor):
            return args[0].elem.tolist()  # CUDA copies to the host (a sync)
        return func(*args, **kwargs)


def _load(original):
    def load(f, map_location=None, *args, **kwargs):
        if not is_fake(map_location):
            return original(f, map_location, *args, **kwargs)
        obj = original(f, "cpu", *args, **kwargs)
        return tree_map_only(torch.Tensor, lambda t: t.to(FAKE), obj)

    return load


def _fake_get_device(original):
    def get_device(gpu=None):
        if gpu is not None and str(gpu).strip() in ("-1", "cpu"):
            return original(gpu)
        return FAKE

    return get_device


@contextlib.contextmanager
def patch_everywhere(module_attr: str, make) -> Iterator[None]:
    """Replace ``module.attr`` by ``make(original)``, and every module's name bound to it (``from module import
    attr``), until the context ends."""
    module_name, attr = module_attr.rsplit(".", 1)
    original = getattr(sys.modules[module_name], attr)
    replacement = make(original)
    patched = [(m, name) for m in list(sys.modules.values()) if m is not None
               for name, value in list(vars(m).items()) if value is original]
    for m, name in patched:
        setattr(m, name, replacement)
    try:
        yield
    finally:
        for m, name in patched:
            setattr(m, name, original)


@contextlib.contextmanager
def fake_gpu() -> Iterator[torch.device]:
    """Run the enclosed code with ``fakegpu:0`` as the GPU (see the module docstring); yields the device."""
    register()
    import utils.device  # noqa: F401  (its get_device is patched)

    with patch_everywhere("torch.load", _load), patch_everywhere("utils.device.get_device", _fake_get_device), \
            _Functions(), _Dispatch():
        yield FAKE


def to_fake(obj: Any) -> Any:
    """Every tensor of ``obj`` (nested containers) moved to the fake GPU (inside :func:`fake_gpu`)."""
    return tree_map_only(torch.Tensor, lambda t: t.to(FAKE), obj)
