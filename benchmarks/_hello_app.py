"""Baseline for the HTTP benchmark: the smallest JSON POST endpoint on the same stack (uvicorn +
Starlette), so our /predict figure can be read as a ratio to the framework floor."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def echo(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"probability": 0.5, "prediction": 0.0, "threshold": 0.5, "model_version": str(len(body))})


app = Starlette(routes=[Route("/predict", echo, methods=["POST"])])
