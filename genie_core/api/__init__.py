"""OpenAI-compatible HTTP API over the chat engine (FastAPI + sse-starlette, served by uvicorn)."""
