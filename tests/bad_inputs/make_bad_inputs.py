"""Regenerate tests/bad_inputs/{configs,api,runs,predict}: `python tests/bad_inputs/make_bad_inputs.py`.

(H1's data files live in data/ with their own generator.) CONFIGS/PREDICT/RUNS/API_FILES in
tests/test_rel_bad_inputs.py say which command each entry goes through and what its one error line
must name; a file added here without a case there fails `test_every_corpus_entry_has_a_case`.
Bytes are written exactly; files are tiny except where the point is size (generated at test time).
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE = "task: {type: classification}\ndata: {train_file: train.csv}\nmodel: {name_or_path: model}\n"


def _deep(levels: int) -> str:
    return "extra: " + "[" * levels + "]" * levels + "\n"


CONFIGS: dict[str, bytes] = {
    "unknown_key.yaml": (BASE + "colour: blue\n").encode(),
    "misspelled_section.yaml": (BASE + "trainng: {learning_rate: 1.0e-4}\n").encode(),
    "misspelled_nested_key.yaml": (BASE + "training: {learning_rat: 1.0e-4}\n").encode(),
    "wrong_type.yaml": (BASE + "training: {learning_rate: fast}\n").encode(),
    "negative_batch.yaml": (BASE + "training: {per_device_train_batch_size: -4}\n").encode(),
    "list_for_section.yaml": (BASE + "training: [1, 2, 3]\n").encode(),
    "bad_task_type.yaml": b"task: {type: regression}\ndata: {train_file: train.csv}\nmodel: {name_or_path: model}\n",
    "missing_model.yaml": b"task: {type: classification}\ndata: {train_file: train.csv}\n",
    "empty.yaml": b"",
    "comments_only.yaml": b"# nothing here\n",
    "top_level_list.yaml": b"- task\n- data\n",
    "top_level_scalar.yaml": b"just a string\n",
    "invalid_syntax.yaml": b"task: {type: classification\ndata: [\n",
    "tab_indent.yaml": b"task:\n\ttype: classification\n",
    "alias_bomb.yaml": (
        b'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
        b"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        b"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        b"g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    ),
    "deep_nesting.yaml": (BASE + _deep(40)).encode(),
    "very_deep_nesting.yaml": (BASE + _deep(5000)).encode(),  # deeper than Python's recursion limit
    "python_object_tag.yaml": (BASE + "x: !!python/object/apply:os.system ['echo pwned']\n").encode(),
    "not_utf8.yaml": ("task: {type: classification}\nname: 배송\n").encode("cp949"),
    "binary.yaml": bytes(range(256)) * 4,
    "bad_run_name.yaml": (BASE + "name: ../../escape\n").encode(),
    "train_file_missing.yaml": b"task: {type: classification}\ndata: {train_file: no_such_file.csv}\nmodel: {name_or_path: model}\n",
    "train_file_is_dir.yaml": b"task: {type: classification}\ndata: {train_file: .}\nmodel: {name_or_path: model}\n",
    "kfold_out_of_range.yaml": (BASE.replace("train.csv}", "train.csv, kfold: {k: 3, fold: 5}}")).encode(),
    "nan_learning_rate.yaml": (BASE + "training: {learning_rate: .nan}\n").encode(),
}

# OpenAI-compatible chat-completions replies that are not what the protocol promises.
API: dict[str, bytes] = {
    "html_error_page.txt": b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    "empty_body.txt": b"",
    "truncated.json": b'{"choices": [{"message": {"content": "acc',
    "no_choices.json": b'{"id": "x", "object": "chat.completion"}',
    "empty_choices.json": b'{"choices": []}',
    "content_null.json": b'{"choices": [{"message": {"role": "assistant", "content": null}}]}',
    "content_list.json": b'{"choices": [{"message": {"content": [{"type": "text", "text": "a"}]}}]}',
    "not_utf8.json": b'{"choices": [{"message": {"content": "\xff\xfe"}}]}',
    "top_level_list.json": b'[{"choices": []}]',
}

# Run directories that `predict`/`evaluate`/`export`/`report` must refuse with one line.
RUNS: dict[str, dict[str, bytes]] = {
    "other_version": {
        "run.json": json.dumps({"tunelab_version": "9.1.0", "run_format": 99, "name": "x"}).encode(),
        "config.yaml": BASE.encode(),
    },
    "corrupt_run_json": {"run.json": b'{"tunelab_version": "0.1', "config.yaml": BASE.encode()},
    "run_json_is_list": {"run.json": b"[1, 2, 3]", "config.yaml": BASE.encode()},
    "no_run_json": {"config.yaml": BASE.encode()},
    "missing_config": {"run.json": json.dumps({"tunelab_version": "0.1.0", "run_format": 1}).encode()},
    "config_no_longer_valid": {
        "run.json": json.dumps({"tunelab_version": "0.1.0", "run_format": 1}).encode(),
        "config.yaml": (BASE + "removed_option: 1\n").encode(),
    },
    "unfinished": {
        "run.json": json.dumps({"tunelab_version": "0.1.0", "run_format": 1, "status": "running"}).encode(),
        "config.yaml": BASE.encode(),
        "checkpoints/.keep": b"",
    },
}

PREDICT: dict[str, bytes] = {
    "empty.csv": b"",
    "header_only.csv": b"id,text\n",
    "missing_text_column.csv": b"id,body\n1,hello\n2,world\n",
    "binary.csv": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    "not_utf8.csv": "id,text\n1,배송이 늦어요\n".encode("cp949"),
    "mixed_types.jsonl": b'{"id": 1, "text": "fine"}\n{"id": 2, "text": {"nested": "dict"}}\n{"id": 3, "text": ["a", "b"]}\n',
    "jsonl_array.jsonl": b'[{"id": 1, "text": "a"}, {"id": 2, "text": "b"}]\n',
    "unseen_labels.csv": b"id,text,label\n1,my card was charged twice,billing\n2,hello there,label_never_seen_in_training\n",
    "nan_like_labels.csv": b"id,text,label\n1,my card was charged twice,a\n2,hello there,N/A\n3,again,None\n",
}


def write_all() -> None:
    for folder, files in (("configs", CONFIGS), ("api", API), ("predict", PREDICT)):
        for name, data in files.items():
            path = HERE / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    for run, files in RUNS.items():
        for name, data in files.items():
            path = HERE / "runs" / run / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


if __name__ == "__main__":
    write_all()
