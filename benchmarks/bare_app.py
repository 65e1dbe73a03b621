"""The ingest ceiling: a bare FastAPI endpoint that only reads the body (uvicorn bare_app:app)."""

from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/webhooks/dodo")
async def receive(request: Request) -> Response:
    await request.body()
    return Response(status_code=200)
