"""The typed config: one pydantic model per YAML section, `extra="forbid"` everywhere.

Field names in `training:` follow Hugging Face `TrainingArguments` so users' knowledge carries
over; `training_arguments()` in training/ maps them 1:1. The task is a discriminated union on
`task.type`.

The task sections live in config/task_schema.py and the base class in config/section.py; both
are re-exported here, so `tunelab.config.schema` stays the one place to import the config from.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from tunelab.config.section import Section
from tunelab.config.task_schema import (  # noqa: F401  (re-exported: import the config from here)
    ClassificationTask,
    SFTTask,
    SummarizationTask,
    TaskConfig,
    TaskSection,
    task_section,
)


# --------------------------------------------------------------------------------------- data
class KFoldConfig(Section):
    k: int = Field(5, ge=2)
    seed: int = 42
    # Which fold is validation for this run (None: assignment is recorded, no fold used).
    fold: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _fold_in_range(self) -> KFoldConfig:
        if self.fold is not None and self.fold >= self.k:
            raise ValueError(f"fold {self.fold} is out of range for k={self.k} (folds are 0..{self.k - 1})")
        return self


class DataConfig(Section):
    train_file: str
    validation_file: str | None = None
    test_file: str | None = None
    format: Literal["auto", "csv", "tsv", "jsonl", "parquet"] = "auto"
    encoding: str = "utf-8"
    validation_split: float = Field(0.1, gt=0.0, lt=1.0)
    split_seed: int = 42
    stratify: bool = True
    kfold: KFoldConfig | None = None
    max_length: int = Field(256, gt=0, le=1_000_000)
    truncation_side: Literal["right", "left"] = "right"
    # Batching strategy; see data/batching. `auto` decides by device + attention backend.
    batching: Literal["auto", "max_length", "dynamic", "grouped", "bucketed", "packed"] = "auto"
    cache_dir: str = ".tunelab_cache"
    # Warnings (not errors) thresholds.
    imbalance_warn_ratio: float = Field(20.0, gt=1.0)
    mojibake_max_share: float = Field(0.0, ge=0.0, le=1.0)


# -------------------------------------------------------------------------------------- model
class LoraConfig(Section):
    enabled: bool = False
    r: int = Field(16, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    # "auto": derived from config.model_type; "all-linear"; or explicit module names.
    target_modules: Literal["auto", "all-linear"] | list[str] = "auto"
    bias: Literal["none", "all", "lora_only"] = "none"


class QuantizationConfig(Section):
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True

    @model_validator(mode="after")
    def _one_mode(self) -> QuantizationConfig:
        if self.load_in_4bit and self.load_in_8bit:
            raise ValueError("choose one of load_in_4bit and load_in_8bit")
        return self


class ModelConfig(Section):
    name_or_path: str
    revision: str | None = None
    trust_remote_code: bool = False
    # Weights must be safetensors unless this is set (pickle can run code on load).
    allow_pickle: bool = False
    # auto: decided by the runtime plan (fp32 master weights for full fine-tuning).
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    # Pad token policy for tokenizers without one: "add" a new [PAD] token (embeddings resized),
    # "eos" alias EOS (explicit opt-in), or "unk".
    pad_token: Literal["auto", "add", "eos", "unk"] = "auto"
    # Classification head init std (None: model default). Re-initialising at a small scale is
    # the fix for the initial-loss-69 failure.
    head_init_std: float | None = Field(None, gt=0.0)
    device_map: str | dict[str, Any] | None = None
    max_memory: dict[str, str] | None = None
    lora: LoraConfig = Field(default_factory=LoraConfig)
    quantization: QuantizationConfig = Field(default_factory=QuantizationConfig)

    @model_validator(mode="after")
    def _quantized_needs_lora(self) -> ModelConfig:
        # 4/8-bit weights cannot take optimizer steps: without adapters nothing would train.
        q = self.quantization
        if (q.load_in_4bit or q.load_in_8bit) and not self.lora.enabled:
            raise ValueError(
                "quantization needs LoRA (quantized weights cannot be trained directly); "
                "set model.lora.enabled: true (QLoRA) or turn quantization off"
            )
        return self


# ----------------------------------------------------------------------------------- training
class TrainingConfig(Section):
    """Names follow transformers.TrainingArguments; mapped 1:1 in training/arguments.py."""

    learning_rate: float = Field(5e-5, gt=0.0)
    per_device_train_batch_size: int = Field(16, gt=0)
    per_device_eval_batch_size: int = Field(32, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    # One epoch: with eval + best-model selection and `auto` batching it matched or beat a plain
    # 1-epoch HF Trainer script in less CPU time in the quality benchmark (docs/benchmarks.md);
    # three would cost three times the time. Small data sets usually want more: set it.
    num_train_epochs: float = Field(1.0, gt=0.0)
    max_steps: int = -1
    # A float below 1 is a ratio of total steps (transformers 5 semantics).
    warmup_steps: float = Field(0.06, ge=0.0)
    lr_scheduler_type: str = "linear"
    weight_decay: float = Field(0.01, ge=0.0)
    max_grad_norm: float = Field(1.0, ge=0.0)
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    # Fused AdamW (one kernel over all tensors) is HF Trainer's own default on torch >= 2.8 and
    # several times faster than the per-tensor loop on CPU for embedding-heavy models.
    optim: str = "adamw_torch_fused"
    seed: int = 42
    data_seed: int | None = None
    dataloader_num_workers: int | Literal["auto"] = "auto"
    dataloader_pin_memory: bool | Literal["auto"] = "auto"
    logging_steps: int = Field(10, gt=0)
    eval_strategy: Literal["no", "steps", "epoch"] = "epoch"
    eval_steps: int | None = None
    save_strategy: Literal["no", "steps", "epoch", "best"] = "epoch"
    save_steps: int | None = None
    save_total_limit: int | None = 2
    load_best_model_at_end: bool = True
    metric_for_best_model: str | None = None  # None: the task's primary metric
    gradient_checkpointing: bool = False
    torch_compile: bool = False
    early_stopping_patience: int | None = None

    @field_validator("warmup_steps")
    @classmethod
    def _warmup(cls, v: float) -> float:
        if v >= 1 and v != int(v):
            raise ValueError("warmup_steps >= 1 must be a whole number of steps (below 1 it is a ratio)")
        return v


# ---------------------------------------------------------------------------------- inference
class GenerationConfig(Section):
    max_new_tokens: int = Field(64, gt=0)
    min_new_tokens: int = Field(0, ge=0)
    num_beams: int = Field(1, gt=0)
    do_sample: bool = False
    temperature: float = Field(1.0, gt=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(50, ge=0)
    repetition_penalty: float = Field(1.0, gt=0.0)
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = Field(0, ge=0)
    early_stopping: bool = False


class TTAConfig(Section):
    enabled: bool = False
    # classification views: "original", "head", "tail", "normalized"; summarization: decodes.
    views: list[str] = Field(default_factory=lambda: ["original", "head", "tail"])
    num_decodes: int = Field(3, gt=0)


class InferenceConfig(Section):
    batch_size: int = Field(32, gt=0)
    top_k: int = Field(3, gt=0)
    id_column: str = "id"
    prediction_column: str = "prediction"
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    tta: TTAConfig = Field(default_factory=TTAConfig)


class RougeConfig(Section):
    tokenizer: Literal["auto", "kiwi", "whitespace", "char", "default"] = "auto"
    # Several references: "max" (best reference per sample) or "mean".
    aggregate: Literal["max", "mean"] = "max"
    use_stemmer: bool = False


class EvaluationConfig(Section):
    rouge: RougeConfig = Field(default_factory=RougeConfig)


# ----------------------------------------------------------------------------------- tracking
class TrackingConfig(Section):
    backend: Literal["mlflow", "none"] = "mlflow"
    # None: sqlite:///<output_dir>/mlflow.db (local, no server).
    uri: str | None = None
    experiment: str = "tunelab"


class RuntimeConfig(Section):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    tf32: bool | Literal["auto"] = "auto"
    liger_kernels: bool = False


class DoctorConfig(Section):
    enabled: bool = True  # `tunelab train` runs doctor first and stops on errors
    batches: int = Field(4, gt=0)
    overfit_steps: int = Field(40, gt=0)
    # The one-batch overfit test (`doctor --overfit`) uses its own optimizer on a copy of the
    # model; a higher lr than training's makes memorising one batch quick.
    overfit_lr: float = Field(1e-3, gt=0.0)
    # Live monitors (diagnostics/monitors.py): a grad norm above this many times the running
    # median is a spike; a loss with no new minimum for this many logging steps is a plateau.
    grad_spike_factor: float = Field(10.0, gt=1.0)
    plateau_logs: int = Field(20, gt=1)


# ----------------------------------------------------------------------------------- baseline
class FewShotExample(Section):
    input: str
    output: str


class BaselineConfig(Section):
    """`tunelab baseline`: zero-/few-shot through an OpenAI-compatible chat-completions API.

    Only the NAME of the environment variable holding the key lives in the config, so configs,
    run files and reports never contain the key.
    """

    base_url: str  # e.g. https://api.upstage.ai/v1, http://localhost:8000/v1 (vLLM), .../v1 (Ollama)
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"  # None: no Authorization header (local servers)
    system_prompt: str | None = None
    # Placeholders: {input}; classification also {labels}. None: a task default.
    prompt_template: str | None = None
    examples: list[FewShotExample] = Field(default_factory=list)
    num_train_examples: int = Field(0, ge=0)  # extra few-shot examples drawn from the train split
    split: Literal["validation", "test"] = "validation"
    max_rows: int | None = Field(None, gt=0)
    concurrency: int = Field(4, ge=1, le=256)
    timeout_s: float = Field(60.0, gt=0.0)
    max_retries: int = Field(5, ge=0, le=50)
    backoff_s: float = Field(1.0, ge=0.0)
    max_backoff_s: float = Field(60.0, ge=0.0)
    temperature: float = Field(0.0, ge=0.0)
    max_tokens: int = Field(256, gt=0)
    extra_body: dict[str, Any] = Field(default_factory=dict)  # provider-specific request fields
    output_dir: str | None = None  # default <output_dir>/baseline-<name>; holds the response cache


# -------------------------------------------------------------------------------------- serve
class ServeConfig(Section):
    """`tunelab serve RUN_DIR`: the run behind an HTTP API (serve/). CLI flags override these."""

    # Loopback by default: exposing a model to the network is an explicit choice (0.0.0.0).
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)  # 0: any free port (printed at startup)
    # Dynamic batching: a batch runs when it holds max_batch_size texts or its first text has
    # waited max_wait_ms, whichever comes first.
    max_batch_size: int = Field(32, gt=0, le=4096)
    max_wait_ms: float = Field(5.0, ge=0.0, le=10_000.0)
    # Texts waiting for the model; a request that would overflow it gets 503 + Retry-After.
    max_queue: int = Field(1024, gt=0)
    max_texts_per_request: int = Field(64, gt=0)
    max_chars_per_text: int = Field(20_000, gt=0)
    # Per-request generation overrides may not exceed these (cost bounds for one caller).
    max_new_tokens_limit: int = Field(512, gt=0)
    max_num_beams: int = Field(4, gt=0)
    # uvicorn worker processes, each with its own copy of the model (CPU scale-out on one host).
    workers: int = Field(1, gt=0, le=64)
    # NAME of the environment variable holding the API key (never the key itself); None: no auth.
    api_key_env: str | None = None
    # Seconds in-flight requests get to finish after SIGTERM before they are cancelled.
    shutdown_timeout_s: float = Field(30.0, gt=0.0)


# -------------------------------------------------------------------------------------- root
class Config(Section):
    name: str = Field("run", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    output_dir: str = "runs"
    task: TaskConfig
    data: DataConfig
    model: ModelConfig
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    doctor: DoctorConfig = Field(default_factory=DoctorConfig)
    baseline: BaselineConfig | None = None  # only read by `tunelab baseline`
    serve: ServeConfig = Field(default_factory=ServeConfig)  # only read by `tunelab serve`

    @field_validator("tracking", mode="before")
    @classmethod
    def _tracking_none(cls, v: Any) -> Any:
        # `tracking: none` (or null/false) is the documented way to turn tracking off.
        if v is None or v is False or (isinstance(v, str) and v.lower() == "none"):
            return {"backend": "none"}
        if isinstance(v, str) and v.lower() == "mlflow":
            return {"backend": "mlflow"}
        return v
