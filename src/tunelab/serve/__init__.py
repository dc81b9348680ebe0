"""`tunelab serve RUN_DIR`: a finished run behind an HTTP API (FastAPI + uvicorn).

Modules: `server` (settings, API key, uvicorn, SIGTERM), `app` (routes, errors, lifecycle),
`inputs` (request checks and limits), `batching` (dynamic batching), `engine` (loading and
predicting through pipeline/ and inference/predict.py, so answers equal `tunelab predict`'s),
`metrics` (Prometheus, with `prometheus_client`).

Why not LitServe (read for this: litserve 0.2.19). It does what we need (dynamic batching on
FastAPI) but through its own process model: every inference worker is a separate process started
with `spawn`, fed through multiprocessing/ZeroMQ queues (it requires `pyzmq` and
`uvicorn[standard]`), with its own server lifecycle and CLI around uvicorn. For us that means a
pickled round trip between processes on every request (the 1-client latency budget is 20 ms
over a bare forward pass), a second copy of the model per worker even on a 2-core CPU box, and
SIGTERM/readiness semantics we would have to learn and work around rather than uvicorn's own.
What we need from it is a queue that groups texts from concurrent requests: an in-process
batcher (one model worker thread, ~150 lines in `batching.py`, torch releases the GIL during the
forward pass so the event loop keeps accepting requests) in front of FastAPI. Scale-out is left
to existing tools: uvicorn workers (`serve.workers`) or replicas behind any load balancer; for
generative models at scale, `tunelab export --merge` and vLLM on the merged directory.
"""
