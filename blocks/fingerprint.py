"""What a state dict looks like: which of the project's networks, with which config sizes, and loading one
into a network with that check.

Used to explain a checkpoint that does not fit the model it is loaded into: "it looks like a stage-1
encoder" or "Decoder.z_dim 32 in the file, 16 in config_stage1.yaml", instead of a page of key names.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from utils.checkpoint import unwrap
from utils.errors import CheckpointError, CheckpointMismatchError

STAGE1_DECODER = "stage-1 decoder"
STAGE1_ENCODER = "stage-1 encoder"
TEMPORAL_DISC = "stage-1 temporal discriminator"
PATCH_DISC = "patch discriminator"
AE_ENCODER = "conditioning AE encoder"
AE_DECODER = "conditioning AE decoder"
CINN = "cINN"
AE_TRAINING = "AE training checkpoint (encoder, decoder, disc)"
_SHOWN = 3  # keys listed per category


def _patch_weight(sd: Mapping) -> Any:
    return sd.get("main.0.weight_orig", sd.get("main.0.weight"))


def _cinn_values(sd: Mapping) -> dict[str, int]:
    z_dim = int(sd["sub_layers.0.norm_layer.loc"].shape[1])
    first = sd.get("sub_layers.0.coupling.s.0.main.0.weight")
    out = {"z_dim": z_dim, "Flow.n_flows": len({k.split(".")[1] for k in sd if k.startswith("sub_layers.")})}
    if first is not None:
        linears = {k for k in sd if re.match(r"sub_layers\.0\.coupling\.s\.0\.main\.\d+\.weight$", k)}
        out.update({"condition size": int(first.shape[1]) - z_dim // 2, "Flow.flow_hidden_depth": len(linears) - 2,
                    "Flow.flow_mid_channels_factor": int(first.shape[0]) // max(z_dim, 1)})
    return out


# kind -> (keys that identify it, config values read from the shapes)
KINDS: dict[str, tuple[tuple[str, ...], Callable[[Mapping], dict[str, int]]]] = {
    STAGE1_DECODER: (("fc.weight", "head_0.conv_0.bias", "conv_img.weight"), lambda sd: {
        "Decoder.z_dim": int(sd["fc.weight"].shape[1]), "Decoder.channel_factor": int(sd["conv_img.weight"].shape[1])}),
    STAGE1_ENCODER: (("conv_mu.weight", "conv1.weight"), lambda sd: {
        "Encoder.z_dim": int(sd["conv_mu.weight"].shape[0]), "Encoder.channels[0]": int(sd["conv1.weight"].shape[0])}),
    TEMPORAL_DISC: (("conv1.weight", "fc.weight", "norm1.weight"), lambda sd: {
        "Discriminator_Temporal.channels[0]": int(sd["conv1.weight"].shape[0])}),
    AE_ENCODER: (("model.conv1.weight", "model.fc.sub_layers.0.weight"), lambda sd: {
        "AE.z_dim": int(sd["model.fc.sub_layers.0.weight"].shape[0]) // 2}),
    AE_DECODER: (("map_to_class_embedding.main.0.weight",), lambda sd: {
        "AE.z_dim": int(sd["map_to_class_embedding.main.0.weight"].shape[1])}),
    CINN: (("sub_layers.0.norm_layer.loc",), _cinn_values),
    PATCH_DISC: (("main.0.bias",), lambda sd: {"Discriminator_Patch.ndf": int(_patch_weight(sd).shape[0])}
                 if _patch_weight(sd) is not None else {}),
}


def identify(sd: Mapping) -> tuple[str | None, dict[str, int]]:
    """``(kind, config values)`` of a state dict, or ``(None, {})`` when it is none of the project's networks."""
    if sd and all(isinstance(v, Mapping) for v in sd.values()) and {"encoder", "decoder"} <= set(sd):
        return AE_TRAINING, {}
    for kind, (keys, values) in KINDS.items():
        if all(k in sd for k in keys):
            try:
                return kind, values(sd)
            except (KeyError, AttributeError, IndexError, TypeError):
                return kind, {}
    return None, {}


def expected_values(kind: str, config: Mapping, z_dim: int | None = None) -> dict[str, tuple[Any, str]]:
    """The config values :func:`identify` can read back for ``kind``, as ``key -> (value, config file name)``."""
    name = Path(str(config.get("_path", "the config"))).name
    get = lambda section, key: config.get(section, {}).get(key)  # noqa: E731
    if kind == STAGE1_DECODER:
        vals = {"Decoder.z_dim": get("Decoder", "z_dim"), "Decoder.channel_factor": get("Decoder", "channel_factor")}
    elif kind == STAGE1_ENCODER:
        vals = {"Encoder.z_dim": get("Encoder", "z_dim"),
                "Encoder.channels[0]": (get("Encoder", "channels") or [None])[0]}
    elif kind == TEMPORAL_DISC:
        vals = {"Discriminator_Temporal.channels[0]": (get("Discriminator_Temporal", "channels") or [None])[0]}
    elif kind in (AE_ENCODER, AE_DECODER):
        vals = {"AE.z_dim": get("AE", "z_dim")}
    elif kind == PATCH_DISC:
        vals = {"Discriminator_Patch.ndf": get("Discriminator_Patch", "ndf")}
    elif kind == CINN:
        control = bool(get("Training", "control"))
        cond = get("Conditioning_Model", "z_dim")
        vals = {"Flow.n_flows": get("Flow", "n_flows"), "Flow.flow_hidden_depth": get("Flow", "flow_hidden_depth"),
                "Flow.flow_mid_channels_factor": get("Flow", "flow_mid_channels_factor"),
                "condition size": None if cond is None else int(cond) + (30 if control else 0)}
        out = {k: (v, name) for k, v in vals.items() if v is not None}
        if z_dim is not None:
            out["z_dim"] = (int(z_dim), "the stage-1 model (Decoder.z_dim)")
        return out
    else:
        vals = {}
    return {k: (v, name) for k, v in vals.items() if v is not None}


def _shape(t: Any) -> str:
    return str(tuple(getattr(t, "shape", ())))


def _listed(keys: list[str]) -> str:
    return ", ".join(keys[:_SHOWN]) + (f" ... (+{len(keys) - _SHOWN})" if len(keys) > _SHOWN else "")


def mismatch_report(model_sd: Mapping, file_sd: Mapping, kind: str, expected: Mapping[str, tuple[Any, str]],
                    config_name: str = "the config") -> str:
    """'' when ``file_sd`` fits ``model_sd`` (same keys and shapes); else a short explanation."""
    missing = [k for k in model_sd if k not in file_sd]
    unexpected = [k for k in file_sd if k not in model_sd]
    shaped = [k for k in model_sd
              if k in file_sd and tuple(getattr(file_sd[k], "shape", ())) != tuple(model_sd[k].shape)]
    if not (missing or unexpected or shaped):
        return ""
    parts = [f"{len(missing)} missing, {len(unexpected)} unexpected and {len(shaped)} mis-shaped keys "
             f"(the file has {len(file_sd)} keys, the model {len(model_sd)})"]
    if missing:
        parts.append(f"missing: {_listed(missing)}")
    if unexpected:
        parts.append(f"unexpected: {_listed(unexpected)}")
    if shaped:
        parts.append("mis-shaped: " + _listed([f"{k} {_shape(file_sd[k])} in the file vs {_shape(model_sd[k])} "
                                               f"in the model" for k in shaped]))
    found, values = identify(file_sd)
    if found is None:
        parts.append(f"it does not look like any of the project's networks (first keys: {_listed(list(file_sd))})")
    elif found != kind:
        parts.append(f"it looks like a {found}, not a {kind}")
    disagree = [f"{k} {values[k]} in the file, {v} in {src}" for k, (v, src) in expected.items()
                if k in values and values[k] != v]
    if disagree:
        parts.append("config values that disagree: " + "; ".join(disagree))
    elif found == kind:
        parts.append(f"it looks like a {kind} of another configuration than {config_name}")
    return "; ".join(parts)


def load_state_checked(module: torch.nn.Module, state_dict: Mapping, file: str | Path, kind: str,
                       expected: Mapping[str, Any] | None = None, config_name: str = "the config") -> None:
    """``module.load_state_dict(state_dict)`` (strict) after checking that the file fits: a
    :class:`CheckpointMismatchError` names the file, what it looks like, the missing / unexpected /
    mis-shaped keys and the config values that disagree (``expected``: config key -> value)."""
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"{file}: its 'state_dict' is a {type(state_dict).__name__}, not a mapping of tensors")
    report = mismatch_report(unwrap(module).state_dict(), state_dict, kind, expected or {}, config_name)
    if report:
        raise CheckpointMismatchError(f"{file} does not fit the {kind}: {report}")
    unwrap(module).load_state_dict(state_dict)
