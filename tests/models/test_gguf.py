"""The GGUF header reader and the format check, on the real SmolLM2 file and on written headers."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.core.errors import Invalid
from podium.models.gguf import NotGguf, read_gguf
from podium.models.inspect import inspect_path
from podium.worker.llama import packaged_gguf
from tests.models.ggufs import gguf_bytes, write_gguf


def test_reads_the_real_smollm2_header() -> None:
    info = read_gguf(packaged_gguf())
    assert info.architecture == "llama"
    assert info.context_length == 8192
    assert info.kind == "model"
    assert info.tensor_count > 10
    facts = inspect_path(packaged_gguf())
    assert (facts.format, facts.engines) == ("gguf", ("llama.cpp",))


def test_written_header_adapter_and_skipped_arrays(tmp_path: Path) -> None:
    info = read_gguf(write_gguf(tmp_path / "a.gguf", "qwen2", kind="adapter", ctx=None))
    assert (info.architecture, info.kind, info.context_length) == ("qwen2", "adapter", None)
    assert info.metadata["tokenizer.ggml.tokens"] == "<array of 3>"
    assert info.metadata["general.file_type"] == 2


def test_truncated_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.gguf"
    path.write_bytes(gguf_bytes()[:40])
    with pytest.raises(NotGguf, match="cut short"):
        read_gguf(path)
    with pytest.raises(Invalid) as exc:
        inspect_path(path)
    assert exc.value.field == "file"


def test_not_a_model_and_unserved_architecture(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello, not weights\n")
    with pytest.raises(Invalid, match="not a model"):
        inspect_path(text)
    with pytest.raises(Invalid, match="no engine here serves it"):
        inspect_path(write_gguf(tmp_path / "x.gguf", "frobnicator"))


def test_hf_directory_reads_config_json(tmp_path: Path) -> None:
    d = tmp_path / "hf"
    d.mkdir()
    (d / "config.json").write_text('{"architectures": ["Qwen2ForCausalLM"], "max_position_embeddings": 32768}')
    (d / "model.safetensors").write_bytes(b"\x02\0\0\0\0\0\0\0{}")
    facts = inspect_path(d)
    assert (facts.format, facts.architecture, facts.context_length, facts.engines) == (
        "safetensors",
        "Qwen2ForCausalLM",
        32768,
        ("vllm",),
    )
    (d / "config.json").write_text('{"architectures": ["WeirdForCausalLM"]}')
    with pytest.raises(Invalid, match="no engine"):
        inspect_path(d)
