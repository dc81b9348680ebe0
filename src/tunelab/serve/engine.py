"""A finished run loaded for serving: the same loader and prediction code as `tunelab predict`.

`Engine.load` goes through pipeline/predict.py's loader (full model, LoRA adapters, or a merged
export given as `model_dir`), and `predict_rows` through inference/predict.py's `predict_frame`
(the task's own length-ordered prediction, TTA when the run has it on), so a served answer is
the answer `tunelab predict` writes for the same row. What this module adds is the shape of an
HTTP answer: one dict per input, in input order.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunelab.config.schema import Config, GenerationConfig
    from tunelab.runtime.plan import RuntimePlan
    from tunelab.tasks.base import Prediction


@dataclass
class Engine:
    run_dir: Path
    cfg: Config
    task: Any
    model: Any
    tokenizer: Any
    plan: RuntimePlan

    @classmethod
    def load(cls, run_dir: Path, overrides: list[str] | None = None, model_dir: Path | None = None) -> Engine:
        from tunelab.pipeline.predict import load_trained_run, run_config

        run, cfg = run_config(Path(run_dir), overrides or [])  # also resolves latest:NAME
        cfg, task, model, tokenizer, plan = load_trained_run(run, cfg, model_dir)
        model.eval()
        return cls(run.path, cfg, task, model, tokenizer, plan)

    # ------------------------------------------------------------------ what a request may send
    @property
    def task_type(self) -> str:
        return str(self.cfg.task.type)

    @property
    def classifier(self) -> bool:
        """Answers are class probabilities (top_k applies), not generated text."""
        return not self.cfg.task.generative

    @property
    def input_columns(self) -> list[str]:
        """Columns an input object must have; a plain string fills the first one."""
        return list(self.task.required_columns("predict"))

    @property
    def id_column(self) -> str | None:
        return self.cfg.task.id_column

    @property
    def label_names(self) -> list[str]:
        if self.classifier:
            return list(self.task.label_names or [])
        return list(self.cfg.task.declared_labels() or [])

    @property
    def generation(self) -> GenerationConfig:
        return self.cfg.inference.generation

    # ------------------------------------------------------------------ prediction
    def predict_rows(self, rows: list[dict[str, Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
        """One prediction dict per row, in row order. `params`: validated per-request overrides."""
        import pandas as pd

        from tunelab import ui
        from tunelab.inference.predict import predict_frame

        ids = [row.get(self.id_column) if self.id_column else None for row in rows]
        frame = pd.DataFrame([{c: row[c] for c in self.input_columns} for row in rows], columns=self.input_columns)
        cfg = self.config_for(params, len(rows))
        with ui.quiet_progress():  # one bar per request would flood the server log
            prediction = predict_frame(self.task, self.model, self.tokenizer, frame, cfg, self.plan)
        answers = self.answers(prediction, cfg, len(rows))
        for answer, id_ in zip(answers, ids):
            if id_ is not None:
                answer["id"] = id_
        return answers

    def config_for(self, params: dict[str, Any], n: int) -> Config:
        """The run's config with this batch's size and the request's overrides (already validated)."""
        inference = self.cfg.inference
        update: dict[str, Any] = {"batch_size": max(1, n)}  # the dynamic batch is one forward pass
        if "top_k" in params:
            update["top_k"] = params["top_k"]
        generation = {k: v for k, v in params.items() if k != "top_k"}
        if generation:
            update["generation"] = inference.generation.model_copy(update=generation)
        return self.cfg.model_copy(update={"inference": inference.model_copy(update=update)})

    def answers(self, prediction: Prediction, cfg: Config, n: int) -> list[dict[str, Any]]:
        cols = prediction.columns
        if self.classifier:
            k = sum(1 for name in cols if name.startswith("top") and name.endswith("_label"))
            return [
                {
                    "label": cols["prediction"][i],
                    "probability": cols["probability"][i],
                    "top_k": [
                        {"label": cols[f"top{j}_label"][i], "probability": cols[f"top{j}_prob"][i]}
                        for j in range(1, k + 1)
                    ],
                }
                for i in range(n)
            ]
        texts = cols[cfg.inference.prediction_column]
        generated = prediction.extra.get("generated")
        if generated is not None:  # sft with a label set: the mapped label and what was generated
            return [{"label": texts[i], "text": generated[i]} for i in range(n)]
        return [{"text": texts[i]} for i in range(n)]

    def warm_up(self) -> None:
        """One tiny prediction so the first caller does not pay for lazy initialisation."""
        self.predict_rows([dict.fromkeys(self.input_columns, "warm up")], {})

    # ------------------------------------------------------------------ metadata
    def metadata(self) -> dict[str, Any]:
        import torch
        import transformers

        from tunelab.version import __version__

        model_config = getattr(self.model, "config", None)
        return {
            "run_id": self.run_dir.resolve().name,
            "run_name": self.cfg.name,
            "task": self.task_type,
            "model": {
                "name_or_path": self.cfg.model.name_or_path,
                "model_type": getattr(model_config, "model_type", None),
                "lora": bool(self.cfg.model.lora.enabled),
            },
            "labels": self.label_names,
            "input_columns": self.input_columns,
            "id_column": self.id_column,
            "max_length": self.cfg.data.max_length,
            "top_k": self.cfg.inference.top_k if self.classifier else None,
            "generation": None if self.classifier else self.generation.model_dump(mode="json"),
            "device": self.plan.device,
            "versions": {
                "tunelab": __version__,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "python": platform.python_version(),
            },
        }
