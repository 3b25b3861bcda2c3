from pathlib import Path

import onnx

import runtime


def test_int8_file_is_smaller_keeps_the_interface_and_samples(exported_tiny: dict[str, Path]) -> None:
    fp32, int8 = exported_tiny["onnx"], exported_tiny["int8"]
    assert int8.stat().st_size < fp32.stat().st_size
    meta = {p.key for p in onnx.load(str(int8)).metadata_props}
    assert {"textgen.format", "textgen.tokenizer", "textgen.model_config", "textgen.checksum"} <= meta
    generator = runtime.load(int8)  # contract and checksum checks pass
    text = "".join(generator.generate("To be", max_new_tokens=30, temperature=0))
    assert len(text) == 30


def test_export_reports_the_int8_cost(exported_tiny: dict[str, Path]) -> None:
    report = exported_tiny["report"]
    assert "int8.onnx" in report and "top-1 agreement" in report and "loss fp32" in report
