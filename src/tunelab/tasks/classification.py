"""Text classification (single label): encoders and decoders through AutoModelForSequenceClassification.

Everything classification-specific lives here: the text template, the label map, the model head
(label map in the model config, decoder mask pooling, optional head re-init), metrics and
length-ordered prediction with top-k probabilities.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tunelab.errors import ConfigError, DataError
from tunelab.protocols import Prediction

if TYPE_CHECKING:
    import pandas as pd
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan


class ClassificationTaskImpl:
    name = "classification"
    preprocessing_version = "cls-2"  # 2: a pair placed by the template is not also a second segment
    greater_is_better = True
    task_kind = "classification"  # for data/batching.make_collator

    def __init__(self, cfg: Config, label_names: list[str] | None = None):
        self.cfg = cfg
        self.task = cfg.task
        names = label_names if label_names is not None else self.task.labels
        self.label_names: list[str] = [str(n) for n in names] if names else []
        self.label2id = {n: i for i, n in enumerate(self.label_names)}
        from tunelab.tasks.classification_loss import check_weight_labels

        check_weight_labels(self.task.class_weights, self.label_names)  # before anything is tokenized
        self._template_fields = _template_fields(self.task.template)
        # `{text_pair}` in the template: the template lays out both texts as ONE sequence and the
        # pair is not passed again as the tokenizer's second segment. Without it, the pair is the
        # second segment ([SEP] + token_type_ids), as the model was pretrained on pairs.
        self.pair_in_template = "text_pair" in self._template_fields
        if self.pair_in_template and not self.task.text_pair_column:
            raise ConfigError(
                "task.template uses {text_pair} but task.text_pair_column is not set",
                hint="set task.text_pair_column to the column of the second text, or drop {text_pair}",
            )

    # ------------------------------------------------------------------------- data
    def required_columns(self, split: str) -> list[str]:
        cols = [self.task.text_column] + ([self.task.text_pair_column] if self.task.text_pair_column else [])
        cols += [f for f in self._template_fields if f not in ("text", "text_pair") and f not in cols]
        if split in ("train", "validation"):
            cols.append(self.task.label_column)
        return cols

    def cache_fingerprint(self) -> dict[str, Any]:
        t = self.task
        return {
            "task": "classification",
            "template": t.template,
            "text_column": t.text_column,
            "text_pair_column": t.text_pair_column,
            "label_column": t.label_column,
            "labels": self.label_names,
        }

    def render(self, batch: dict[str, list[Any]]) -> tuple[list[str], list[str] | None]:
        """(texts, pairs) after the template; `{text}`/`{text_pair}` name the configured columns.

        pairs is None when there is no pair column or the template places `{text_pair}` itself.
        """
        t = self.task
        n = len(batch[t.text_column])
        texts = []
        for i in range(n):
            row = {k: v[i] for k, v in batch.items()}
            row["text"] = batch[t.text_column][i]
            if t.text_pair_column:
                row["text_pair"] = batch[t.text_pair_column][i]
            texts.append(t.template.format(**row) if t.template != "{text}" else str(row["text"]))
        if not t.text_pair_column or self.pair_in_template:
            return texts, None  # the template already placed the pair (see __init__)
        return texts, [str(p) for p in batch[t.text_pair_column]]

    def tokenize(self, batch: dict[str, list[Any]], tokenizer: PreTrainedTokenizerBase) -> dict[str, list[Any]]:
        texts, pairs = self.render(batch)
        enc = tokenizer(texts, pairs, truncation=True, max_length=self.cfg.data.max_length)
        out: dict[str, list[Any]] = dict(enc)
        if self.task.label_column in batch:
            out["labels"] = [self.label_id(v) for v in batch[self.task.label_column]]
        return out

    def label_id(self, value: Any) -> int:
        from tunelab.data.readers import to_text

        key = to_text(value)
        if key not in self.label2id:
            raise DataError(
                f"{self.task.label_column}: label {key!r} is not in the run's label map ({len(self.label_names)} labels)",
                hint="labels come from the training file (or task.labels); check spelling and case",
            )
        return self.label2id[key]

    @property
    def primary_metric(self) -> str:
        return self.task.primary_metric

    @property
    def checkpoint_metric(self) -> tuple[str, bool]:
        """Checkpoints are chosen by the primary metric itself (computed at every evaluation)."""
        return self.primary_metric, self.greater_is_better

    # ------------------------------------------------------------------------ model

    def build_model(
        self,
        cfg: Config,
        plan: RuntimePlan,
        tokenizer: PreTrainedTokenizerBase,
        run_dir: Path | None = None,
        **load_kwargs: Any,
    ) -> PreTrainedModel:
        """The classifier as configured: label map, quantization, placement, LoRA + trained head."""
        from tunelab.models.lora import apply_lora
        from tunelab.models.placement import placement_kwargs
        from tunelab.models.quantization import check_optimizer, prepare_quantized, quantization_kwargs

        if not self.label_names:
            raise ConfigError(
                "classification: no labels known", hint="labels are read from data.train_file; or set task.labels"
            )
        check_optimizer(cfg, plan)
        load_kwargs = {**quantization_kwargs(cfg, plan), **placement_kwargs(cfg, run_dir), **load_kwargs}
        model = self._load_base(cfg, plan, tokenizer, **load_kwargs)
        if cfg.model.head_init_std is not None:
            reinit_head(model, cfg.model.head_init_std)
        model = prepare_quantized(model, cfg, plan)  # QLoRA: k-bit prep, norms and head in fp32
        if cfg.model.lora.enabled:
            # The fresh head trains in full and is saved with the adapters (peft modules_to_save).
            model = apply_lora(
                model, cfg.model.lora, gradient_checkpointing=plan.gradient_checkpointing, head=head_attribute(model)
            )
        return prepare_classifier(model, cfg)

    def _load_base(self, cfg: Config, plan: RuntimePlan, tokenizer: Any, **kwargs: Any) -> Any:
        """The base model with this run's label map (a fresh head unless it already matches)."""
        from transformers import AutoModelForSequenceClassification

        from tunelab.models.loading import load_model

        return load_model(
            cfg,
            plan,
            tokenizer,
            AutoModelForSequenceClassification,
            num_labels=len(self.label_names),
            id2label=dict(enumerate(self.label_names)),
            label2id=dict(self.label2id),
            # A checkpoint that already has a head with another label count gets a fresh head.
            ignore_mismatched_sizes=True,
            **kwargs,
        )

    def load_trained(self, cfg: Config, plan: RuntimePlan, model_dir: Any) -> tuple[Any, Any]:
        """(tokenizer, model) of a finished run's model/ directory, ready for inference (no head re-init)."""
        from transformers import AutoModelForSequenceClassification

        from tunelab.models.loading import load_model
        from tunelab.models.lora import is_peft_dir
        from tunelab.models.tokenizer import load_tokenizer

        local = cfg.model_copy(
            update={"model": cfg.model.model_copy(update={"name_or_path": str(model_dir), "revision": None})}
        )
        tokenizer = load_tokenizer(local)
        from tunelab.models.placement import placement_kwargs

        # model_dir is <run_dir>/model: offloaded weights go to <run_dir>/offload, as in training.
        place = placement_kwargs(cfg, Path(model_dir).parent)
        if is_peft_dir(model_dir):
            from peft import PeftModel

            # The base as configured (label map, quantization), then the adapters and the trained
            # head from model/ on top (the head copy in the adapters replaces the fresh one).
            from tunelab import ui
            from tunelab.models.quantization import quantization_kwargs

            # The base's fresh head is replaced by the trained one just below: the load report's
            # "newly initialised: score.weight" would be true for a moment and misleading.
            with ui.transformers_errors_only():
                base = self._load_base(cfg, plan, tokenizer, **quantization_kwargs(cfg, plan), **place)
            model = PeftModel.from_pretrained(base, str(model_dir), is_trainable=False)
        else:
            model = load_model(local, plan, tokenizer, AutoModelForSequenceClassification, **place)
        return tokenizer, prepare_classifier(model, cfg)

    def build_trainer(self, **kwargs: Any) -> Any:
        from tunelab import ui
        from tunelab.tasks.classification_loss import ClassificationLoss, class_weights
        from tunelab.training.trainer import build_trainer

        # Our loss for every classifier, label smoothing included (not the Trainer's LabelSmoother).
        weights = class_weights(self.task.class_weights, self.label_names, _train_labels(kwargs.get("train_dataset")))
        if weights is not None:
            ui.err().print(_weights_line(self.task.class_weights, self.label_names, weights))
        kwargs.setdefault("compute_loss_func", ClassificationLoss(self.task.label_smoothing, weights))
        return build_trainer(task=self, **kwargs)

    # ---------------------------------------------------------------------- metrics
    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        from tunelab.evaluation.classification import summary_metrics

        logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        labels = np.asarray(eval_pred.label_ids)
        preds = np.asarray(logits).argmax(-1)
        keep = labels != -100
        return summary_metrics(labels[keep], preds[keep], len(self.label_names))

    def score(self, prediction: Prediction, frame: pd.DataFrame) -> dict[str, Any]:
        from tunelab.evaluation.classification import classification_report

        gold = [self.label_id(v) for v in frame[self.task.label_column].tolist()]
        pred = [self.label2id[p] for p in prediction.columns["prediction"]]
        return classification_report(gold, pred, self.label_names)

    # -------------------------------------------------------------------- predict
    def predict(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        frame: pd.DataFrame,
        cfg: Config,
        plan: RuntimePlan,
    ) -> Prediction:
        from tunelab.inference.ordered import ordered_logits

        records = {c: frame[c].tolist() for c in frame.columns}
        texts, pairs = self.render(records)
        enc = tokenizer(texts, pairs, truncation=True, max_length=cfg.data.max_length)
        logits = ordered_logits(model, tokenizer, enc, cfg.inference.batch_size, plan, description="predicting")
        probs = _softmax(logits)
        id_col = self.task.id_column
        ids = frame[id_col].tolist() if id_col and id_col in frame.columns else list(range(len(frame)))
        return Prediction(
            ids=ids,
            columns=self.prediction_columns(probs, cfg.inference.top_k),
            extra={"probs": probs, "label_names": list(self.label_names)},
        )

    def prediction_columns(self, probs: np.ndarray, top_k: int) -> dict[str, list[Any]]:
        """`prediction`, `probability` and `top{i}_label`/`top{i}_prob` for i <= k (flat: CSV-friendly)."""
        k = max(1, min(top_k, probs.shape[1] if probs.ndim == 2 else 1))
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k] if len(probs) else np.zeros((0, k), dtype=int)
        names = np.asarray(self.label_names, dtype=object)
        cols: dict[str, list[Any]] = {
            "prediction": names[order[:, 0]].tolist() if len(probs) else [],
            "probability": [round(float(p), 6) for p in probs[np.arange(len(probs)), order[:, 0]]]
            if len(probs)
            else [],
        }
        for j in range(k):
            cols[f"top{j + 1}_label"] = names[order[:, j]].tolist() if len(probs) else []
            cols[f"top{j + 1}_prob"] = [round(float(p), 6) for p in probs[np.arange(len(probs)), order[:, j]]]
        return cols


def _weights_line(spec: Any, names: list[str], weights: list[float]) -> str:
    """One line: which rule, and the lightest and heaviest class (labels escaped: not rich markup)."""
    from rich.markup import escape

    lo = min(range(len(weights)), key=weights.__getitem__)
    hi = max(range(len(weights)), key=weights.__getitem__)
    rule = spec if isinstance(spec, str) else "given"
    return (
        f"class weights (task.class_weights: {rule}): {weights[lo]:.2f} ({escape(names[lo])}) to "
        f"{weights[hi]:.2f} ({escape(names[hi])}) over {len(weights)} classes"
    )


def _train_labels(dataset: Any) -> list[int]:
    """Label ids of the training rows (empty without a `labels` column)."""
    if dataset is None or "labels" not in getattr(dataset, "column_names", ()):
        return []
    return [int(v) for v in dataset["labels"]]


def prepare_classifier(model: Any, cfg: Config) -> Any:
    """Decoder heads pool by pad id (wrong when pad == eos): switch them to attention-mask pooling."""
    from tunelab.models.families import family_of

    if family_of(model.config).pools_by_pad_id:
        from tunelab.models.pooling import enable_mask_pooling

        enable_mask_pooling(model)
    return model


# Where transformers' *ForSequenceClassification classes keep their head, by capability: the
# first of these attributes that holds a module with a Linear in it.
_HEAD_ATTRIBUTES = ("score", "classifier", "classification_head", "logits_proj")


def head_attribute(model: Any, what: str = "model.lora") -> str:
    """The attribute name of the classification head module (`score`, `classifier`, ...)."""
    from torch import nn

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    for attr in _HEAD_ATTRIBUTES:
        head = getattr(inner, attr, None)
        if isinstance(head, nn.Module) and any(isinstance(m, nn.Linear) for m in head.modules()):
            return attr
    raise ConfigError(
        f"{what}: cannot find the classification head of {type(inner).__name__}",
        hint=f"{what} needs a model with a score/classifier head (AutoModelForSequenceClassification)",
    )


def classification_head(model: Any) -> Any:
    """The final Linear producing the logits (score / classifier / classifier.out_proj ...).

    Under peft the head is wrapped (`modules_to_save`): the trained copy is returned.
    """
    from torch import nn

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = getattr(inner, head_attribute(inner, "model.head_init_std"))
    active = getattr(head, "modules_to_save", None)
    if active is not None:  # peft's ModulesToSaveWrapper: the copy that trains
        head = active[head.active_adapter if isinstance(head.active_adapter, str) else head.active_adapter[0]]
    if isinstance(head, nn.Linear):
        return head
    return [m for m in head.modules() if isinstance(m, nn.Linear)][-1]


def reinit_head(model: Any, std: float) -> None:
    """Re-initialise the logits layer at `std` (bias 0) so initial logits are near-uniform.

    With large hidden-state norms (pretrained decoders), the default init can give an initial
    loss far above ln(num_labels); a small std brings it back (doctor's initial-loss check).
    """
    import torch

    head = classification_head(model)
    with torch.no_grad():
        head.weight.normal_(0.0, std)
        if head.bias is not None:
            head.bias.zero_()


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True) if len(logits) else logits.astype(np.float64)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32) if len(logits) else e.astype(np.float32)


def _template_fields(template: str) -> list[str]:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    except ValueError as exc:
        raise ConfigError(
            f"task.template: invalid format string ({exc})", hint='e.g. "{text}" or "Title: {title}\\n{text}"'
        ) from None
    return [f.split(".")[0].split("[")[0] for f in fields]
