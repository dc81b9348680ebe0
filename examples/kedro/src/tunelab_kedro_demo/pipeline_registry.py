"""The project's one pipeline: tunelab's split -> tokenize -> doctor -> train -> evaluate + predict."""

from kedro.pipeline import Pipeline

from tunelab.integrations.kedro import create_pipeline


def register_pipelines() -> dict[str, Pipeline]:
    return {"__default__": create_pipeline(data="intents", test="intents_test")}
