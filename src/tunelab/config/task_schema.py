"""The task section of the config: a discriminated union on `task.type` (re-exported by config/schema.py).

Each task section also answers what the floors below tasks/ need to know about its columns and
answers (`input_columns`, `target_columns`, `class_column`, `generative`, `primary_metric`, ...),
so data/, diagnostics/ and experiments/ ask the section instead of branching on `task.type`.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from tunelab.config.section import Section


# --------------------------------------------------------------------------------------- task
class TaskSection(Section):
    """What every task section answers about its data and its answers."""

    # Generative tasks produce text with a (seq2seq or causal) LM; the model may be placed with a
    # device_map and offload into the run directory. Classification loads a whole model with a head.
    generative: ClassVar[bool] = True
    # Fields that name columns (for messages that say which key a column came from).
    column_fields: ClassVar[tuple[str, ...]] = ()
    # The LLM-API baseline's prompt when `baseline.prompt_template` is not set.
    baseline_prompt: ClassVar[str] = "{input}"

    def input_columns(self) -> tuple[str, ...]:
        """Columns the model reads (also the keys of duplicate and leakage checks)."""
        raise NotImplementedError

    def target_columns(self) -> tuple[str, ...]:
        """Columns that hold the answer (absent from test files): label or target(s)."""
        raise NotImplementedError

    def label_column_role(self) -> str | None:
        """The column validated as a class label (the `label` role), or None when targets are text."""
        return None

    def class_column(self) -> str | None:
        """The column whose values are classes (counted as labels), or None when answers are free text."""
        return self.label_column_role()

    def declared_labels(self) -> list[str] | None:
        """The label set fixed in the config, if any (else labels come from the train file)."""
        return None

    def column_sources(self) -> tuple[tuple[str, str], ...]:
        """(column, the config key that names it): an error about a column names the key to fix."""
        return tuple((getattr(self, f), f"task.{f}") for f in self.column_fields if getattr(self, f))

    def target_token_limit(self) -> int | None:
        """Tokens a generated answer may take (`max_target_length`); None for a class label."""
        return None

    def wants_chat_template(self) -> bool:
        """Whether prompts go through the tokenizer's chat template when it has one."""
        return False

    def system_message(self) -> str | None:
        """The system prompt of a prompted task, if configured."""
        return None

    @property
    def primary_metric(self) -> str:
        """The metric a run of this task is judged by (checkpoint choice, reports, ensembles)."""
        return "macro_f1" if self.class_column() else "rouge_sum"


class _Prompted:
    """The prompt settings summarization and sft share, read from their fields of the same names
    (no annotations here: pydantic would turn them into fields of their own)."""

    def target_token_limit(self) -> int | None:
        return self.max_target_length  # type: ignore[attr-defined]

    def wants_chat_template(self) -> bool:
        return self.use_chat_template  # type: ignore[attr-defined]

    def system_message(self) -> str | None:
        return self.system_prompt  # type: ignore[attr-defined]


class ClassificationTask(TaskSection):
    type: Literal["classification"] = "classification"
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"
    id_column: str | None = "id"
    # Python format string over the row's columns; part of the cache key. With `{text_pair}` in it the
    # template lays out both texts as one sequence; without it the pair is the tokenizer's second segment.
    template: str = "{text}"
    # Fixed label order; by default labels are sorted by first appearance in train (stable).
    labels: list[str] | None = None
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    # Loss weight per class: "none", "balanced" (n_rows / (n_classes * n_rows_of_class), mean 1
    # over the training rows), "sqrt" (its square root, mean 1 again) or {label: weight}.
    # Default sqrt, chosen by the quality benchmark (docs/benchmarks.md section 7): on both real
    # data sets it scored at or above the unweighted loss in accuracy and macro-F1 with the same
    # spread over seeds; balanced gave the most macro-F1 but widened the accuracy spread, and its
    # weights grow with the imbalance (a 50-row class among 2M rows and 280 classes: 143x).
    class_weights: Literal["none", "balanced", "sqrt"] | dict[str, Annotated[float, Field(gt=0.0)]] = "sqrt"

    generative: ClassVar[bool] = False
    column_fields: ClassVar[tuple[str, ...]] = ("text_column", "text_pair_column", "label_column", "id_column")
    baseline_prompt: ClassVar[str] = (
        "Classify the text into exactly one of these labels: {labels}.\nAnswer with the label only.\n\nText: {input}"
    )

    def input_columns(self) -> tuple[str, ...]:
        return (self.text_column,) + ((self.text_pair_column,) if self.text_pair_column else ())

    def target_columns(self) -> tuple[str, ...]:
        return (self.label_column,)

    def label_column_role(self) -> str | None:
        return self.label_column

    def declared_labels(self) -> list[str] | None:
        return self.labels


class SummarizationTask(_Prompted, TaskSection):
    type: Literal["summarization"] = "summarization"
    input_column: str = "dialogue"
    target_column: str = "summary"
    id_column: str | None = "id"
    # For causal LMs: the prompt around the input; the chat template is used when the tokenizer
    # has one and `use_chat_template` is true.
    prompt_template: str = "Summarize the dialogue.\n\n{input}\n\nSummary:"
    system_prompt: str | None = None
    use_chat_template: bool = True
    max_target_length: int = Field(128, gt=0)
    # Several references per sample: extra target columns, scored with `rouge.aggregate`.
    extra_target_columns: list[str] = Field(default_factory=list)

    column_fields: ClassVar[tuple[str, ...]] = ("input_column", "target_column", "id_column")
    baseline_prompt: ClassVar[str] = "Summarize the dialogue.\n\n{input}"

    def input_columns(self) -> tuple[str, ...]:
        return (self.input_column,)

    def target_columns(self) -> tuple[str, ...]:
        return (self.target_column, *self.extra_target_columns)

    def column_sources(self) -> tuple[tuple[str, str], ...]:
        extra = tuple((col, "task.extra_target_columns") for col in self.extra_target_columns)
        return super().column_sources() + extra


class SFTTask(_Prompted, TaskSection):
    type: Literal["sft"] = "sft"
    instruction_column: str = "instruction"
    response_column: str = "response"
    id_column: str | None = "id"
    prompt_template: str = "{instruction}"
    system_prompt: str | None = None
    use_chat_template: bool = True
    max_target_length: int = Field(64, gt=0)
    # Classification by generation: when given, predictions are mapped onto this set.
    label_set: list[str] | None = None

    column_fields: ClassVar[tuple[str, ...]] = ("instruction_column", "response_column", "id_column")

    def input_columns(self) -> tuple[str, ...]:
        return (self.instruction_column,)

    def target_columns(self) -> tuple[str, ...]:
        return (self.response_column,)

    def class_column(self) -> str | None:
        # With a label set the response is a class: its values are counted and scored as labels.
        return self.response_column if self.label_set else None

    def declared_labels(self) -> list[str] | None:
        return list(self.label_set) if self.label_set else None


TaskConfig = Annotated[ClassificationTask | SummarizationTask | SFTTask, Field(discriminator="type")]


def task_section(raw: Any) -> TaskSection | None:
    """The task section of a stored config (a run's config.yaml, read back as a dict), or None.

    Falls back to the defaults of its `type` when the stored keys no longer validate, so readers of
    old runs still learn the task's primary metric and answer kind.
    """
    from pydantic import TypeAdapter, ValidationError

    if not isinstance(raw, dict):
        return None
    adapter: TypeAdapter[Any] = TypeAdapter(TaskConfig)
    for candidate in (raw, {"type": raw.get("type")}):
        try:
            return adapter.validate_python(candidate)
        except ValidationError:
            continue
    return None
