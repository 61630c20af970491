"""`/v0/models`: your own weights (GGUF, safetensors directories) and LoRA adapters.

Upload: `POST /v0/models {"name", "size", "sha256"?, "base"?, "format"?}` opens an upload, then
`PATCH /v0/models/{id}/content?offset=N` sends raw bytes (one chunk per request, in order; a 409
names the offset to resume from), the last chunk completes it (sha256 and format checked) and the
model appears in the templates. A small file (under the listener's 64 MiB body limit, e.g. an
adapter) may come in one multipart/form-data request instead (`file`, `name`, `base`, `sha256`,
`format` parts), through the same checks. Or register without uploading: `{"name", "volume", "path"}` (a file
or a Hugging Face directory on a named volume) or `{"name", "hub_id"}`. Thin: all rules live in
podium.models.service.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.datastructures import UploadFile

from podium.api.deps import require
from podium.core.errors import Invalid
from podium.models.service import ModelService, NewUpload
from podium.models.table import UPLOADING, ModelRow
from podium.models.wiring import model_service

router = APIRouter(prefix="/v0/models", tags=["models"])
FORM_CHUNK = 16 << 20  # a multipart upload is written in these pieces, as the CLI sends them


class ModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, description="the model_name it is deployed by")
    base: str | None = Field(default=None, max_length=128, description="an adapter: the model it adapts")
    size: int | None = Field(default=None, ge=1, le=1 << 50, description="upload: the file's size in bytes")
    sha256: str | None = Field(default=None, description="upload: checked when the last byte arrives")
    format: str | None = Field(default=None, description="gguf or safetensors (default: read from the file)")
    volume: str | None = Field(default=None, max_length=63, description="register a path on this named volume")
    path: str | None = Field(default=None, max_length=4096, description="with volume: the file or directory")
    hub_id: str | None = Field(default=None, max_length=256, description="register a hub model id (vLLM)")
    architecture: str | None = Field(default=None, max_length=64, description="with hub_id: e.g. LlamaForCausalLM")

    @model_validator(mode="after")
    def _one_source(self) -> ModelCreate:
        sources = [k for k in ("size", "volume", "hub_id") if getattr(self, k) is not None]
        if len(sources) != 1:
            raise ValueError("give exactly one of size (an upload), volume + path, or hub_id")
        if (self.volume is None) != (self.path is None):
            raise ValueError("volume and path go together")
        return self


class ModelOut(BaseModel):
    id: str
    name: str
    base: str | None
    source: str
    status: str
    format: str
    architecture: str
    kind: str
    context_length: int | None
    engines: list[str]
    size_bytes: int
    received_bytes: int
    sha256: str
    path: str
    upload_url: str | None
    routing_keys: list[str] = Field(description="an adapter: its `model` on each endpoint of its base")
    created_at: float


class ModelsOut(BaseModel):
    models: list[ModelOut]


def out(row: ModelRow, routing_keys: list[str] | None = None) -> ModelOut:
    return ModelOut(
        id=row.id,
        name=row.name,
        base=row.base,
        source=row.source,
        status=row.status,
        format=row.format,
        architecture=row.architecture,
        kind=row.kind,
        context_length=row.context_length,
        engines=[e for e in row.engines.split(",") if e],
        size_bytes=row.size_bytes,
        received_bytes=row.received_bytes,
        sha256=row.sha256,
        path=row.path,
        upload_url=f"/v0/models/{row.id}/content?offset={row.received_bytes}" if row.status == UPLOADING else None,
        routing_keys=routing_keys or [],
        created_at=row.created_at,
    )


_FORM_FIELDS = ("name", "base", "sha256", "format")
_CREATE_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": ModelCreate.model_json_schema()},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["name", "file"],
                "properties": {
                    **{k: {"type": "string"} for k in _FORM_FIELDS},
                    "file": {"type": "string", "format": "binary"},
                },
            }
        },
    },
}


async def _create_body(request: Request) -> ModelCreate | tuple[ModelCreate, UploadFile]:
    """JSON (open an upload, or register), or multipart/form-data with the file itself in one request
    (`curl -F file=@lora.gguf -F name=N`): for files under the listener's body limit, e.g. adapters."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=len(_FORM_FIELDS))
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid("file", "multipart uploads carry the weights in a `file` part")
        fields = {k: v for k in _FORM_FIELDS if isinstance(v := form.get(k), str)}
        return _validated({**fields, "size": upload.size or 0}), upload
    try:
        data = await request.json()
    except ValueError as exc:
        raise RequestValidationError([{"loc": ("body",), "msg": f"not JSON: {exc}"}]) from exc
    return _validated(data)


def _validated(data: object) -> ModelCreate:
    try:
        return ModelCreate.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from exc


@router.post("", status_code=201, response_model=ModelOut, openapi_extra={"requestBody": _CREATE_BODY})
async def create_model(
    request: Request, svc: ModelService = Depends(model_service), _: object = Depends(require("admin"))
) -> ModelOut:
    parsed = await _create_body(request)
    if isinstance(parsed, tuple):
        return out(await _upload_form(svc, *parsed))
    body = parsed
    if body.size is not None:
        return out(await svc.create_upload(NewUpload(body.name, body.size, body.sha256, body.base, body.format)))
    if body.volume is not None and body.path is not None:
        return out(await svc.register_volume(body.name, body.volume, body.path, body.base))
    assert body.hub_id is not None
    if body.base is not None:
        raise Invalid("base", "a hub model is registered as a base model")
    return out(await svc.register_hub(body.name, body.hub_id, body.architecture))


async def _upload_form(svc: ModelService, body: ModelCreate, upload: UploadFile) -> ModelRow:
    """The one-request form: the same upload, fed from the spooled part in chunks (same checks)."""
    assert body.size is not None
    row = await svc.create_upload(NewUpload(body.name, body.size, body.sha256, body.base, body.format))
    offset = 0
    while chunk := await upload.read(FORM_CHUNK):
        row = await svc.write_chunk(row.id, offset, chunk)
        offset += len(chunk)
    return row


@router.patch("/{model_id}/content", response_model=ModelOut)
async def upload_chunk(
    model_id: str,
    request: Request,
    offset: int = Query(ge=0, description="where this chunk starts: the upload's received_bytes"),
    svc: ModelService = Depends(model_service),
    _: object = Depends(require("admin")),
) -> ModelOut:
    """Raw bytes (application/octet-stream) at `offset`; the last chunk completes and checks the model."""
    return out(await svc.write_chunk(model_id, offset, await request.body()))


@router.post("/{model_id}/complete", response_model=ModelOut)
async def complete_upload(
    model_id: str, svc: ModelService = Depends(model_service), _: object = Depends(require("admin"))
) -> ModelOut:
    """The model, once every byte arrived; a truncated upload is a 422 (it stays resumable)."""
    return out(await svc.complete(model_id))


@router.get("", response_model=ModelsOut)
async def list_models(svc: ModelService = Depends(model_service), _: object = Depends(require("read"))) -> ModelsOut:
    return ModelsOut(models=[out(r, await svc.adapter_keys(r)) for r in await svc.list()])


@router.get("/{model_id}", response_model=ModelOut)
async def get_model(
    model_id: str, svc: ModelService = Depends(model_service), _: object = Depends(require("read"))
) -> ModelOut:
    row = await svc.get(model_id)
    return out(row, await svc.adapter_keys(row))


@router.delete("/{model_id}", response_model=ModelOut)
async def delete_model(
    model_id: str, svc: ModelService = Depends(model_service), _: object = Depends(require("admin"))
) -> ModelOut:
    """409 while an endpoint deploys it (or its base, for an adapter); the file goes with the row."""
    return out(await svc.delete(model_id))
