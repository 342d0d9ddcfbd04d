"""Generation: the vLLM client, prompts and citations (issue 3; nothing here yet)."""

__all__: list[str] = []
