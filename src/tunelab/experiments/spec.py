"""The experiment YAML: one base config, a list of variants (dotted-key overrides), optional k folds.

```yaml
name: compare-models
base: base.yaml                  # a config file (relative to this file) or an inline mapping
output_dir: experiments          # the experiment lives in <output_dir>/<name>/
kfold: {k: 5, seed: 42}          # optional: every variant runs once per fold
max_parallel: 2                  # runs at once (each its own process)
gpus: [0, 1]                     # optional: one run per GPU via CUDA_VISIBLE_DEVICES
variants:
  - name: bert
    overrides: {model.name_or_path: klue/bert-base}
  - name: qwen-lora
    overrides: {model.name_or_path: Qwen/Qwen3-0.6B, model.lora.enabled: true, training.learning_rate: 2e-4}
```
Variant configs are NOT validated here: an invalid variant fails alone (recorded as a failed run
with its ConfigError) and the others go on.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tunelab.config.loader import apply_override, read_yaml, set_dotted
from tunelab.errors import ConfigError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class Variant(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    overrides: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None

    @field_validator("overrides")
    @classmethod
    def _dotted_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if not key or any(not part for part in key.split(".")):
                raise ValueError(f"override key {key!r} must be a dotted config key like training.learning_rate")
        return v


class ExperimentKFold(_Strict):
    k: int = Field(5, ge=2)
    seed: int = 42


class TTAComparison(_Strict):
    # After training, measure inference.tta against no-TTA on validation for each successful run.
    enabled: bool = False


class ExperimentSpec(_Strict):
    name: str = Field("experiment", pattern=NAME_PATTERN)
    base: str | dict[str, Any]
    variants: list[Variant] = Field(min_length=1)
    kfold: ExperimentKFold | None = None
    output_dir: str = "experiments"
    max_parallel: int = Field(1, ge=1)
    gpus: list[int] | None = None
    # Seconds one run may take before it is killed and recorded as failed (None: no limit).
    timeout_s: float | None = Field(None, gt=0)
    tta: TTAComparison = Field(default_factory=TTAComparison)

    @model_validator(mode="after")
    def _unique_names(self) -> ExperimentSpec:
        names = [v.name for v in self.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variant names must be unique (repeated: {', '.join(dupes)})")
        return self


def load_spec(path: str | Path) -> tuple[ExperimentSpec, dict[str, Any]]:
    """Read + validate the experiment file; return the spec and the resolved base config mapping."""
    path = Path(path)
    raw = read_yaml(path)
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_format(exc, raw)}", hint="see examples/experiment.yaml") from None
    return spec, resolve_base(spec, path)


def resolve_base(spec: ExperimentSpec, spec_path: Path) -> dict[str, Any]:
    if isinstance(spec.base, dict):
        base = copy.deepcopy(spec.base)
    else:
        base_path = Path(spec.base)
        if not base_path.is_absolute():
            base_path = spec_path.parent / base_path
        base = read_yaml(base_path)
    _absolutize_paths(base, Path.cwd())
    return base


def _absolutize_paths(base: dict[str, Any], root: Path) -> None:
    # Relative paths in a config are relative to where `tunelab` runs (as for `tunelab train`);
    # variant configs live in the experiment dir, so pin them before the file moves.
    data = base.get("data")
    if isinstance(data, dict):
        for key in ("train_file", "validation_file", "test_file", "cache_dir"):
            if isinstance(data.get(key), str) and not Path(data[key]).is_absolute():
                data[key] = str((root / data[key]).resolve())
    model = base.get("model")
    if isinstance(model, dict) and isinstance(model.get("name_or_path"), str):
        cand = root / model["name_or_path"]
        if not Path(model["name_or_path"]).is_absolute() and cand.exists():  # else a hub id
            model["name_or_path"] = str(cand.resolve())


def variant_config(
    base: dict[str, Any],
    variant: Variant,
    overrides: list[str],
    fold: int | None,
    kfold: ExperimentKFold | None,
    name: str,
    output_dir: Path,
) -> dict[str, Any]:
    """The raw config mapping of one run: base, then --set overrides, then the variant's, then the fold."""
    raw = copy.deepcopy(base)
    for item in overrides:
        apply_override(raw, item)
    for key, value in variant.overrides.items():
        set_dotted(raw, key, copy.deepcopy(value))
    if kfold is not None and fold is not None:
        set_dotted(raw, "data.kfold", {"k": kfold.k, "seed": kfold.seed, "fold": fold})
    raw["name"] = name
    raw["output_dir"] = str(output_dir)
    return raw


def _format(exc: ValidationError, raw: dict[str, Any]) -> str:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    path = ".".join(loc) or "experiment"
    if err["type"] == "extra_forbidden":
        hint = _did_you_mean(loc)
        return f"{path}: unknown key" + (f"; did you mean {hint}?" if hint else "")
    if err["type"] == "missing":
        return f"{path}: required key is missing"
    return f"{path}: {err['msg']} (got {err.get('input')!r})"


def _did_you_mean(loc: list[str]) -> str | None:
    # Same rule as config.loader.did_you_mean, over the experiment's own models.
    model: type[BaseModel] = ExperimentSpec
    for part in loc[:-1]:
        if part.isdigit():
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        inner = [a for a in _flat_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not inner:
            return None
        model = inner[0]
    match = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1, cutoff=0.6)
    return ".".join([*loc[:-1], match[0]]) if match else None


def _flat_args(ann: Any) -> list[Any]:
    args = getattr(ann, "__args__", None)
    if not args:
        return [ann]
    out: list[Any] = []
    for a in args:
        out.extend(_flat_args(a))
    return out
