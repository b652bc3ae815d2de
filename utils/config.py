"""YAML configuration: loading, ``key.path=value`` overrides, validation against a schema, saving.

Configs keep the original schema (top-level sections such as ``Decoder``, ``Training``, ``Data``) and
are handled as plain nested dicts. Validation fills documented defaults for optional keys and raises a
:class:`ConfigError` naming the file, the section and the key when a required key is missing or a key
is unknown (typically misspelt). Keys starting with ``_`` are private bookkeeping (e.g. ``_path``, the
file the config was read from) and are neither validated nor saved.
"""
from __future__ import annotations

import copy
import difflib
import logging
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

logger = logging.getLogger(__name__)

REQUIRED = object()  # marker: the key must be present
ANY = object()  # marker for a free-form section (any keys accepted)


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-5`` (no dot) as a float, as the original configs write it."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def yaml_load(text_or_stream: Any) -> Any:
    """Parse YAML with the float rule above."""
    return yaml.load(text_or_stream, Loader=_Loader)


class ConfigError(ValueError):
    """A configuration file is missing a key, has an unknown key, or holds an inconsistent value."""


def _augmentation_schema() -> dict:
    return {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "hue": 0.0, "prob_hflip": 0.5}


def _data_schema() -> dict:
    return {
        "sequence_length": REQUIRED,
        "img_size": REQUIRED,
        "dataset": REQUIRED,
        "data_path": REQUIRED,
        "aug": True,
        "texture": None,
        "image_format": None,  # None -> any of png/jpg/jpeg/bmp
        "iter_train": 1,
        "iter_eval": 1,
        "iter_test": 1,
        "reverse": False,
        "test_size": None,  # iPER: number of test clips (None -> 1000)
        "split_dir": None,  # folder with the split lists (landscape/iPER); default: the packaged lists
        "crop_margin": None,  # train crop margin; None -> 16 for landscape/DTDB, 0 otherwise
        "Augmentation": _augmentation_schema(),
    }


def _logging_schema() -> dict:
    # mode None -> 'online' when a wandb login exists, else 'disabled' (resolved by utils.logging)
    return {"entity": None, "project": "image2video", "mode": None}


def _patch_disc_schema() -> dict:
    return {"in_channels": 3, "ndf": 64, "n_layers": 3, "use_actnorm": True, "spectral_norm": True}


def _common_training() -> dict:
    """Training keys shared by every stage; the values are documented defaults."""
    return {
        "n_epochs": REQUIRED,
        "lr": REQUIRED,
        "bs": REQUIRED,
        "bs_eval": None,  # None -> same as bs
        "workers": 4,
        "weight_decay": 0.0,
        "verbose_idx": 30,
        "savename": "run",
        "save_path": "runs",
        "reload_path": "",
        "seed": 42,
        "amp": "none",  # none | bf16 | fp16 (CUDA only; a no-op on CPU)
        "compile": False,  # torch.compile the networks
        "grad_clip": 0.0,  # 0 disables gradient clipping
        "max_steps_per_epoch": None,  # cap iterations per epoch (smoke runs, demo)
        "max_eval_batches": None,  # cap validation batches
        "save_media": True,  # GIF/MP4 of samples each epoch
        "lpips_weights": None,  # local VGG16 ImageNet weights (vgg16-397923af.pth); None -> torch hub cache
        "allow_random_lpips": False,  # tests/demo only: LPIPS with a random VGG backbone (logged loudly)
        "i3d_weights": None,  # I3D weights for the per-epoch FVD; None -> models/PI3D or models/DTI3D
    }


STAGE1_SCHEMA: dict = {
    "Decoder": {
        "channel_factor": REQUIRED,
        "z_dim": REQUIRED,
        "upsample_s": REQUIRED,
        "upsample_t": REQUIRED,
        "spectral_norm": True,
    },
    "Encoder": {
        "res_type_encoder": "resnet18",
        "deterministic": False,
        "use_max_pool": False,
        "z_dim": REQUIRED,
        "channels": REQUIRED,
        "stride_t": REQUIRED,
        "stride_s": REQUIRED,
    },
    "Discriminator_Temporal": {
        "eval_seq_length": 16,
        "res_type_encoder": "resnet18",
        "deterministic": False,
        "use_max_pool": True,
        "channels": REQUIRED,
        "stride_t": REQUIRED,
        "stride_s": REQUIRED,
        "spectral_norm": True,
    },
    "Discriminator_Patch": _patch_disc_schema(),
    "Training": {
        **_common_training(),
        "patch_GAN": "basic",
        "GAN_Loss": "hinge",
        "w_coup_s": 1.0,  # unused by the objective (as in the original); kept for the schema
        "w_coup_t": REQUIRED,
        "w_fmap_t": REQUIRED,
        "w_percep": REQUIRED,
        "w_recon": REQUIRED,
        "w_GP": REQUIRED,
        "w_kl": REQUIRED,
        "subsample_length": 12,
        "pretrain": REQUIRED,
        "weight_decay": 1e-5,
        "lr_gamma": 0.98,
        "FVD": "FVD",  # FVD | DTFVD | none
    },
    "Data": _data_schema(),
    "Logging": _logging_schema(),
}

AE_SCHEMA: dict = {
    "AE": {
        "deterministic": False,
        "in_size": REQUIRED,
        "norm": "in",
        "encoder_type": "resnet50",
        "use_actnorm_in_dec": False,
        "z_dim": REQUIRED,
        "ch": 96,  # BigGAN channel base (96 in the paper; smaller for the demo)
    },
    "Discriminator_Patch": _patch_disc_schema(),
    "Training": {**_common_training(), "w_kl": REQUIRED, "pretrain": REQUIRED},
    "Data": _data_schema(),
    "Logging": _logging_schema(),
}

CINN_SCHEMA: dict = {
    "Flow": {"n_flows": REQUIRED, "flow_hidden_depth": REQUIRED, "flow_mid_channels_factor": REQUIRED},
    "Conditioning_Model": {
        "z_dim": REQUIRED,
        "checkpoint_name": "Encoder_stage2",
        "model_name": REQUIRED,
        "model_path": REQUIRED,
    },
    "First_stage_model": {
        "checkpoint_encoder": "best_PFVD_ENC",
        "checkpoint_decoder": "best_PFVD_GEN",
        "model_name": REQUIRED,
        "model_path": REQUIRED,
    },
    "Training": {
        **_common_training(),
        "control": False,  # released configs lack it; False is the original's behaviour
        "gamma": 0.5,
        "step_size": 7,
        "beta1": 0.9,
        "beta2": 0.99,
        "amsgrad": True,
        "max_nonfinite": 10,  # consecutive NaN/Inf losses before the run stops
        "fvd_samples": True,  # FVD of prior samples each epoch (needs I3D weights)
    },
    "Data": _data_schema(),
    "Logging": _logging_schema(),
}

SCHEMAS = {"stage1": STAGE1_SCHEMA, "ae": AE_SCHEMA, "cinn": CINN_SCHEMA}


def _where(path: str | Path | None) -> str:
    return f"config '{path}'" if path else "config"


def _suggest(key: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _validate_section(values: Any, schema: dict, section: str, path: str | Path | None) -> dict:
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"{_where(path)}: section '{section}' must be a mapping, got {type(values).__name__}")
    out = {}
    for key in values:
        if str(key).startswith("_"):
            out[key] = values[key]
        elif key not in schema:
            raise ConfigError(
                f"{_where(path)}: unknown key '{key}' in section '{section}'{_suggest(key, schema)}; "
                f"allowed keys: {sorted(schema)}"
            )
    for key, default in schema.items():
        if isinstance(default, dict):
            out[key] = _validate_section(values.get(key), default, f"{section}.{key}", path)
        elif key in values:
            out[key] = values[key]
        elif default is REQUIRED:
            raise ConfigError(f"{_where(path)}: missing required key '{key}' in section '{section}'")
        else:
            out[key] = copy.deepcopy(default)
    return out


def validate_config(config: Mapping, schema: dict | str, path: str | Path | None = None) -> dict:
    """Check ``config`` against ``schema`` (or its name: stage1/ae/cinn) and return it with defaults filled."""
    if isinstance(schema, str):
        schema = SCHEMAS[schema]
    path = path or config.get("_path")
    out = {}
    for section in config:
        if str(section).startswith("_"):
            out[section] = config[section]
        elif section not in schema:
            raise ConfigError(f"{_where(path)}: unknown section '{section}'{_suggest(section, schema)}")
    for section, sub in schema.items():
        if section not in config:
            if any(v is REQUIRED for v in sub.values()):
                raise ConfigError(f"{_where(path)}: missing section '{section}'")
        out[section] = _validate_section(config.get(section), sub, section, path)
    return out


def _parse_value(text: str) -> Any:
    try:
        return yaml_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(config: dict, overrides: Iterable[str], path: str | Path | None = None) -> dict:
    """Apply ``Section.key=value`` strings (values parsed as YAML) to a copy of ``config``."""
    config = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like Section.key=value")
        dotted, value = item.split("=", 1)
        keys = dotted.strip().split(".")
        node = config
        for k in keys[:-1]:
            if k not in node or not isinstance(node[k], dict):
                raise ConfigError(f"{_where(path)}: override '{item}': no section '{k}'{_suggest(k, node)}")
            node = node[k]
        node[keys[-1]] = _parse_value(value)
    return config


def load_config(
    path: str | Path, schema: dict | str | None = None, overrides: Iterable[str] = ()
) -> dict:
    """Read a YAML config, apply overrides, validate it; the file's path is kept under ``_path``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path.resolve()}")
    with path.open() as f:
        config = yaml_load(f) or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{_where(path)}: top level must be a mapping of sections")
    config = apply_overrides(config, overrides, path)
    config["_path"] = str(path.resolve())
    if schema is not None:
        config = validate_config(config, schema, path)
    return config


def strip_private(config: Mapping) -> dict:
    """Drop the private ``_``-prefixed bookkeeping keys (recursively)."""
    return {
        k: strip_private(v) if isinstance(v, Mapping) else v
        for k, v in config.items()
        if not str(k).startswith("_")
    }


def save_config(config: Mapping, path: str | Path) -> None:
    """Write the (merged) config as YAML beside a run, atomically."""
    from utils.checkpoint import atomic_write_text

    atomic_write_text(yaml.safe_dump(strip_private(config), sort_keys=False), Path(path))
